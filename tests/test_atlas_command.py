"""`csg-interp atlas` on the tiny digits pair: atlas.json (no pixels), AtlasResult save/load,
atlas.html (a card and a captioned figure per filter, offline search), and the page in headless
Chromium (every image decodes, no horizontal overflow at 1280 px, the search box filters)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch

from csg_interp.attribution.atlas import filter_atlas
from csg_interp.workflows.atlas import AtlasResult, atlas_run
from csg_interp.cli import main
from csg_interp.models import SmallCNN
from csg_interp.report.atlas_page import atlas_strip_png, render_atlas_html
from csg_interp.training import CSGNet

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make test installs it when run as root: "
    "apt-get install chromium)",
)
TOP_K = 3


@pytest.fixture(scope="module")
def atlas_runs(tiny_digits_pair, tmp_path_factory):
    """The tiny pair copied, with `csg-interp atlas CSG --baseline STD` run on it."""
    root = tmp_path_factory.mktemp("atlas_runs")
    csg = shutil.copytree(tiny_digits_pair["csg"], root / "csg")
    std = shutil.copytree(tiny_digits_pair["std"], root / "std")
    code = main(["atlas", str(csg), "--baseline", str(std), "--top-k", str(TOP_K),
                 "--device", "cpu", "--threshold-images", "100", "--mi-images", "150",
                 "--jobs", "1"])  # fmt: skip
    assert code == 0
    return {"csg": csg, "std": std}


def test_atlas_json_holds_numbers_not_pixels(atlas_runs):
    payload = json.loads((atlas_runs["csg"] / "atlas.json").read_text())
    atlas, baseline = payload["atlas"], payload["baseline"]
    num_filters = atlas["num_filters"]
    assert len(atlas["filters"]) == num_filters and atlas["top_k"] == TOP_K
    assert atlas["info"]["kind"] == "csg" and baseline["info"]["kind"] == "std"
    assert baseline["info"]["gate"] == "gate_from_mi of the MI matrix"
    assert "150 validation images" in atlas["info"]["mi"]  # the tiny runs have no metrics.json
    first = atlas["filters"][0]
    assert len(first["top"]) == TOP_K and len(first["gate_row"]) == 10
    scores = [entry["score"] for entry in first["top"]]
    assert scores == sorted(scores, reverse=True)
    x1, y1, x2, y2 = first["top"][0]["box"]
    assert 0 <= x1 <= x2 <= 8 and 0 <= y1 <= y2 <= 8  # digits are 8×8
    text = (atlas_runs["csg"] / "atlas.json").read_text()
    assert "base64" not in text and "data:" not in text
    # Every filter the gate assigns to class c sits in serving["gate"][c] when G >= min_gate.
    for c, filters in atlas["serving"]["gate"].items():
        rows = [atlas["filters"][k]["gate_row"][int(c)] for k in filters]
        assert all(v >= atlas["min_gate"] for v in rows) and rows == sorted(rows, reverse=True)


def test_atlas_result_load_round_trips_and_summarises(atlas_runs, tmp_path):
    result = AtlasResult.load(atlas_runs["csg"])
    assert result.split == "test" and result.baseline is not None
    again = result.save(tmp_path)
    assert json.loads(again.read_text()) == json.loads(
        (atlas_runs["csg"] / "atlas.json").read_text()
    )
    summary = result.summary()
    assert "run: 32 filters × top 3 of" in summary and "baseline:" in summary
    with pytest.raises(ValueError, match="no images or maps"):
        render_atlas_html(result)
    with pytest.raises(FileNotFoundError, match="csg-interp atlas"):
        AtlasResult.load(tmp_path / "nowhere")


def test_atlas_html_has_a_captioned_card_per_filter_and_no_external_url(atlas_runs):
    page = (atlas_runs["csg"] / "atlas.html").read_text()
    num_filters = json.loads((atlas_runs["csg"] / "atlas.json").read_text())["atlas"]["num_filters"]
    cards = re.findall(r'<article class="card" id="([mb])-f(\d+)"', page)
    assert sorted(int(k) for p, k in cards if p == "m") == list(range(num_filters))
    assert sorted(int(k) for p, k in cards if p == "b") == list(range(num_filters))
    assert page.count("<img ") == page.count("<figcaption>") == 2 * num_filters
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links)
    # Readable without JavaScript: the search box is hidden until the script shows it.
    assert '<p id="atlas-search-box" hidden>' in page


def test_errors_name_the_flag(atlas_runs):
    with pytest.raises(ValueError, match="unknown split 'train'"):
        atlas_run(atlas_runs["csg"], split="train")
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        atlas_run(atlas_runs["csg"], top_k=0)


def test_cards_show_the_localization_score_where_there_are_masks():
    torch.manual_seed(0)
    net = CSGNet.from_backbone(SmallCNN(3, 1, (4, 6, 8)), num_classes=3).eval()
    images, labels = torch.rand(12, 1, 16, 16), torch.arange(12) % 3
    masks = torch.zeros(12, 16, 16, dtype=torch.bool)
    masks[:, 4:12, 4:12] = True
    atlas = filter_atlas(net, (images, labels), torch.zeros(8), masks=masks, top_k=2)
    result = AtlasResult(run_dir="x", split="test", atlas=atlas,
                         images={"run": dict(enumerate(images))})  # fmt: skip
    page = render_atlas_html(result)
    assert "Per-filter localization" in page and page.count("hit rate") == 8
    # The strip: two 16×16 images scaled ×4 side by side with 2-px padding, RGB.
    from torchvision.io import decode_png

    strip = decode_png(torch.frombuffer(bytearray(atlas_strip_png(atlas, result.images["run"], 0)),
                                        dtype=torch.uint8))  # fmt: skip
    assert tuple(strip.shape) == (3, 64 + 4, 2 * 64 + 6)
    # t_k = 0 keeps every pixel: the outline is the image border, drawn in red.
    assert strip[:, 2, 2].tolist() == [255, 0, 0]


# ------------------------------------------------------------- in a browser
_PROBE = """<script>window.addEventListener("load", function () {
  var root = document.documentElement, out = document.createElement("pre");
  var result = {images: Array.prototype.map.call(document.images,
                  function (i) { return [i.naturalWidth, i.naturalHeight]; }),
                scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
                innerWidth: window.innerWidth,
                searchShown: !document.getElementById("atlas-search-box").hidden};
  var box = document.getElementById("atlas-search");
  box.value = "f3"; box.dispatchEvent(new Event("input"));
  result.visible = Array.prototype.filter.call(document.querySelectorAll("[data-search]"),
      function (el) { return el.style.display !== "none"; }).map(function (el) {
        return el.id || "row"; });
  out.id = "csg-probe"; out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});</script>"""


@needs_chromium
def test_atlas_page_in_headless_chromium(atlas_runs, tmp_path):
    page = (atlas_runs["csg"] / "atlas.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
               "--window-size=1280,2000", "--virtual-time-budget=10000", "--dump-dom",
               probe.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    match = re.search(r'<pre id="csg-probe">([^<]*)</pre>', dom)
    assert match, "the probe script did not run: the page did not load"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["images"] and all(w > 0 and h > 0 for w, h in result["images"])
    # No horizontal overflow in a 1280-px window (the client width excludes the scrollbar).
    assert result["innerWidth"] == 1280, result
    assert result["scrollWidth"] <= result["clientWidth"], result
    assert result["searchShown"]
    # "f3": the two cards of filter 3 (run and baseline) and its two index rows, nothing else.
    assert sorted(result["visible"]) == ["b-f3", "m-f3", "row", "row"]


def test_report_links_to_the_atlas(atlas_runs, tmp_path):
    from csg_interp.report import write_report
    from csg_interp.report.html import HtmlReport

    page = write_report(atlas_runs["csg"], out=atlas_runs["csg"] / "report.html").path.read_text()
    assert '<a href="atlas.html">The filter atlas (atlas.html)</a>' in page
    with pytest.raises(ValueError, match="relative file names"):
        HtmlReport("t").link("x", "https://example.org/atlas.html")
