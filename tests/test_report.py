"""The per-run HTML report: its parts by value, the whole file on a tiny trained pair, and the file
opened in headless Chromium (every image decodes, the page is not blank)."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from csg_interp.cli import main  # noqa: E402
from csg_interp.report import (  # noqa: E402
    HtmlReport,
    flatten_metrics,
    json_tables,
    plot_training_curves,
    write_report,
)

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


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- HtmlReport
def test_html_report_counts_figures_and_escapes_text():
    report = HtmlReport("a <b> title")
    report.section("Figures & tables")
    figure, ax = plt.subplots()
    ax.plot([0, 1])
    report.figure(figure, "caption with <script>alert(1)</script>")
    report.table([{"name": "<i>x</i>", "value": 0.123456, "flag": True, "missing": None}])
    page = report.render()
    assert report.figures == ["caption with <script>alert(1)</script>"]
    assert page.count("<img ") == 1
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "a &lt;b&gt; title" in page
    assert "<td>0.1235</td><td>yes</td><td>–</td>" in page
    assert '<a href="#s1">Figures &amp; tables</a>' in page


def test_html_report_refuses_links_as_figures():
    with pytest.raises(ValueError, match="no links"):
        HtmlReport("t").figure("https://example.org/plot.png", "remote")


def test_flatten_metrics_by_hand():
    values = {"csg": {"acc": 0.9, "mi": {"score": 0.2}}, "classes": ["a", "b"],
              "long": list(range(20)), "rows": [{"x": 1}, {"x": 2}]}
    assert flatten_metrics(values) == {
        "csg.acc": 0.9, "csg.mi.score": 0.2, "classes": "a, b", "long": "(20 values)",
        "rows[0].x": 1, "rows[1].x": 2,
    }


def test_json_tables_split_scalars_records_and_keyed_records():
    document = {
        "protocol": {"attack": "pgd", "eps": [0.03, 0.1]},
        "rows": [{"score": "gate", "auc": 0.9}, {"score": "msp", "auc": 0.7}],
        "models": {"csg": {"acc": 0.9, "loc": 0.5}, "std": {"acc": 0.8, "loc": 0.4}},
        "nested": {"methods": {"cam": {"iou": 0.3}}, "top1": 0.5},
    }
    assert json_tables(document) == [
        ("values", [{"name": "protocol.attack", "value": "pgd"},
                    {"name": "protocol.eps", "value": "0.03, 0.1"},
                    {"name": "nested.top1", "value": 0.5}]),
        ("rows", [{"score": "gate", "auc": 0.9}, {"score": "msp", "auc": 0.7}]),
        ("models", [{"": "csg", "acc": 0.9, "loc": 0.5}, {"": "std", "acc": 0.8, "loc": 0.4}]),
        ("nested.methods", [{"": "cam", "iou": 0.3}]),
    ]


# ------------------------------------------------------------- training curves
HISTORY = [
    {"epoch": 0, "kind": "std", "loss": 2.0, "ce_csg": None, "val_acc": 0.5, "lr_std": 1e-3},
    {"epoch": 1, "kind": "std", "loss": 1.0, "ce_csg": None, "val_acc": 0.7, "lr_std": 1e-3},
    {"epoch": 2, "kind": "csg", "loss": 0.5, "ce_csg": 0.4, "val_acc": 0.8, "lr_std": 1e-4},
]


def test_training_curves_draw_the_columns_and_shade_csg_epochs():
    figure, panels = plot_training_curves(HISTORY, baseline=[{"val_acc": 0.6}, {"val_acc": 0.75}])
    assert list(panels) == ["loss", "accuracy", "learning rate"]
    loss_lines = {line.get_label(): line for line in panels["loss"].lines}
    np.testing.assert_allclose(loss_lines["loss"].get_ydata(), [2.0, 1.0, 0.5])
    np.testing.assert_allclose(loss_lines["ce_csg"].get_ydata(), [np.nan, np.nan, 0.4])
    np.testing.assert_allclose(loss_lines["loss"].get_xdata(), [1, 2, 3])
    accuracy = {line.get_label(): line for line in panels["accuracy"].lines}
    np.testing.assert_allclose(accuracy["val_acc (baseline)"].get_ydata(), [0.6, 0.75])
    assert accuracy["val_acc (baseline)"].get_linestyle() == "--"
    # One shaded span per CSG epoch (epoch 3), in every panel.
    assert all(len(ax.patches) == 1 for ax in panels.values())
    assert panels["learning rate"].get_yscale() == "log"
    assert figure is panels["loss"].figure


def test_training_curves_errors():
    with pytest.raises(ValueError, match="no finished epoch"):
        plot_training_curves([])
    with pytest.raises(ValueError, match="no known column"):
        plot_training_curves([{"epoch": 0, "something": 1.0}])
    with pytest.raises(ValueError, match="need 1 axes"):
        plot_training_curves([{"loss": 1.0}], axes=plt.subplots(1, 2)[1])


# ------------------------------------------------------------- whole report
def _save_png(path, value: float, size=(2, 2)) -> None:
    figure, ax = plt.subplots(figsize=size)
    ax.imshow(np.full((4, 4), value), vmin=0, vmax=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _method(gt_known: float) -> dict:
    return {"threshold": 0.5, "gt_known_loc": gt_known, "top1_loc": gt_known / 2,
            "max_box_acc_v2": gt_known, "mask_iou": 0.25}


LOCALIZE = {
    "protocol": {"box_format": "xyxy pixel-edge", "sweep_step": 0.05},
    "data": {"dataset": "scenes from digits val/test items", "val_images": 8, "test_images": 8},
    "models": {
        "csg": {"methods": {"csg": _method(0.5), "cam": _method(0.375)}},
        "std": {"methods": {"cam": _method(0.25), "gradcam": _method(0.125)}},
    },
}


def _auc(model: str, score: str, eps: float, auc: float) -> dict:
    return {"model": model, "attack": "pgd", "eps": eps, "score": score, "auc": auc}


DETECT = {
    "protocol": {"attack": "pgd", "eps": [0.03, 0.1], "steps": 10, "num_images": 16},
    "attacks": [{"model": "csg", "eps": 0.03, "clean_accuracy": 0.75, "success_rate": 0.5,
                 "n_success": 6}],
    "rows": [_auc("csg", "gate", 0.03, 0.9375), _auc("std", "mi-gate", 0.03, 0.625),
             _auc("csg", "gate", 0.1, 0.45), _auc("std", "mi-gate", 0.1, 0.4)],
}


@pytest.fixture(scope="module")
def report_runs(tiny_digits_pair, tmp_path_factory):
    """Copies of the tiny pair with every analysis the report reads: a real ``evaluate`` (both
    metrics.json files, MI matrices included) and ``explain`` (4 images + a sanity check on 2,
    no PNGs: the report draws its own grid), hand-written ``localize`` and ``detect`` results
    (values chosen for the verdicts below) with their figure files.

    Expected figures (7): training curves, the four-panel gate figure (the baseline is an STD
    model), MI comparison, the explanation grid, the localization overlays, two ROC figures.
    """
    from csg_interp.attribution.explain import explain_run
    from csg_interp.metrics.runs import evaluate_run

    root = tmp_path_factory.mktemp("report_runs")
    csg = shutil.copytree(tiny_digits_pair["csg"], root / "csg")
    std = shutil.copytree(tiny_digits_pair["std"], root / "std")
    evaluate_run(csg, "test", baseline=std, max_samples=200, n_jobs=1, progress=False)
    explain_run(csg, num_images=4, figures=False, n_jobs=1, sanity_images=2)
    (csg / "localize").mkdir()
    (csg / "localize" / "metrics.json").write_text(json.dumps(LOCALIZE))
    for model, method in (("csg", "csg"), ("csg", "cam"), ("std", "cam"), ("std", "gradcam")):
        _save_png(csg / "localize" / f"overlays_{model}_{method}.png", 0.3, size=(8, 1))
    (csg / "detect").mkdir()
    (csg / "detect" / "metrics.json").write_text(json.dumps(DETECT))
    for eps in ("0.03", "0.1"):
        _save_png(csg / "detect" / f"roc_pgd_eps{eps}.png", 0.5, size=(6, 3))
    result = write_report(csg, baseline=std)
    return {"csg": csg, "std": std, "result": result}


EXPECTED_FIGURES = 7
SECTIONS = ["Summary", "Training", "The class-specific gate", "Which filters serve which class",
            "Explanations", "Localization", "Adversarial-sample detection", "Provenance"]


def _card(page: str) -> dict[str, tuple[str, str]]:
    """Summary-card rows: quantity → (value, verdict)."""
    card = page[page.index('<div class="card">'):page.index("</div>", page.index('class="card"'))]
    return {name: (value, verdict) for name, value, verdict in re.findall(
        r'<tr><th scope="row">([^<]*)</th><td class="value">([^<]*)</td>'
        r'<td class="verdict [a-z]+">([^<]*)</td>', card)}


def test_report_is_one_self_contained_document_in_reading_order(report_runs):
    result = report_runs["result"]
    page = result.path.read_text()
    assert result.path == report_runs["csg"] / "report.html"
    assert result.sections == SECTIONS
    assert len(result.figures) == EXPECTED_FIGURES
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == EXPECTED_FIGURES
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(link.startswith(("data:", "#")) for link in links)
    assert "<script" not in page  # readable without JavaScript
    # Headings never name a file; every section with data says when it was computed.
    headings = re.findall(r"<h[1-3][^>]*>([^<]*)</h[1-3]>", page)
    assert not [h for h in headings if re.search(r"\.(json|jsonl|csv|png|npz|pt)\b", h)]
    assert page.count('<p class="computed">') == len(SECTIONS) - 2  # not Summary, Provenance
    # Provenance is folded at the end; git is a revision, not a JSON string.
    assert page.index("<details><summary>CSG run: csg</summary>") > page.index(">Provenance</h2>")
    assert '{"dirty"' not in page and "git revision" in page


def test_summary_card_verdicts_against_the_baseline(report_runs):
    page = report_runs["result"].path.read_text()
    metrics = json.loads((report_runs["csg"] / "metrics.json").read_text())
    card = _card(page)
    assert list(card) == ["model and data", "accuracy", "MIS", "L1-density", "localization",
                          "adversarial detection", "sanity check"]
    assert card["model and data"] == ("smallcnn on digits", "–")
    delta = 100 * (metrics["accuracy"] - metrics["baseline"]["accuracy"])
    assert card["accuracy"] == (
        f"CSG {metrics['accuracy']:.3f} · STD {metrics['baseline']['accuracy']:.3f} "
        f"({delta:+.1f} points)", "pass" if delta >= -1.0 else "fail")
    ratio = metrics["mis"] / metrics["baseline"]["mis"]
    assert card["MIS"][0].startswith(f"CSG {metrics['mis']:.3f} · STD "
                                     f"{metrics['baseline']['mis']:.3f} (×{ratio:.2f})")
    assert card["MIS"][1] == ("pass" if metrics["comparison"]["gap_closed"] >= 0.5 else "fail")
    assert card["L1-density"] == (f"{metrics['l1_density']:.3f} (1/C = 0.100)",
                                  "pass" if metrics["l1_density"] <= 0.15 else "fail")
    # Hand-written localize/detect values: CSG map 0.5 beats STD's best (CAM 0.25); the gate
    # score beats STD at ε 0.03 but is below chance at ε 0.1, so detection fails.
    assert card["localization"] == ("CSG map 0.500 · STD CAM 0.250", "pass")
    assert card["adversarial detection"] == ("ε 0.03: 0.94 vs 0.62; ε 0.1: 0.45 vs 0.40", "fail")
    assert card["sanity check"][0].startswith("CSGAttribution ")


def test_summary_rows_by_hand_and_stale_sources_drop_out():
    from csg_interp.report import ReportData, RunData, Source, summary_rows

    metrics = {"accuracy": 0.9, "mis": 0.3, "mi_ceiling": 0.4, "l1_density": 0.2,
               "num_classes": 4, "n": 100, "split": "test",
               "baseline": {"accuracy": 0.905, "mis": 0.2}, "comparison": {"gap_closed": 0.5}}
    manifest = {"config": {"model": "m", "dataset": "d", "gate": True, "epochs": 2}}
    run = RunData(Path("csg"), manifest, [], None, "last",
                  metrics=Source(Path("metrics.json"), metrics, "2026-01-01 00:00 UTC"))
    rows = {row["name"]: row for row in summary_rows(ReportData(run))}
    assert rows["accuracy"]["value"] == "CSG 0.900 · baseline 0.905 (-0.5 points)"
    assert rows["accuracy"]["verdict"] is True  # within 1 point
    assert rows["MIS"]["value"] == "CSG 0.300 · baseline 0.200 (×1.50), 50 % of the gap closed"
    assert rows["MIS"]["verdict"] is True
    assert rows["L1-density"]["value"] == "0.200 (1/C = 0.250)"
    assert rows["L1-density"]["verdict"] is False  # above 0.15
    assert rows["MIS"]["computed"] == "Computed 2026-01-01 00:00 UTC by csg-interp evaluate."
    run.metrics.stale = "measured after epoch 1 but the run has 2 epochs"
    rows = {row["name"]: row for row in summary_rows(ReportData(run))}
    assert {rows[k]["verdict"] for k in ("accuracy", "MIS", "L1-density")} == {"stale"}
    assert {rows[k]["value"] for k in ("accuracy", "MIS", "L1-density")} == {"(stale)"}


def test_loader_marks_metrics_of_another_epoch_and_files_older_than_the_checkpoint(
        report_runs, tmp_path):
    import os

    from csg_interp.report import load_report_data

    run = shutil.copytree(report_runs["csg"], tmp_path / "csg")
    assert load_report_data(run).main.metrics.stale is None
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "epochs_done": 1}))
    assert "after epoch 1 but the run has 3 epochs" in load_report_data(run).main.metrics.stale
    # A detection result older than the checkpoint: trained on since, so marked.
    checkpoint_time = (run / "last.pt").stat().st_mtime
    os.utime(run / "detect" / "metrics.json", (checkpoint_time - 60, checkpoint_time - 60))
    data = load_report_data(run)
    assert "before last.pt was last written; re-run csg-interp detect" in data.main.detect.stale
    rows = {row["name"]: row for row in summary_rows_of(data)}
    assert rows["adversarial detection"]["verdict"] == "stale"


def summary_rows_of(data):
    from csg_interp.report import summary_rows

    return summary_rows(data)


def test_rerun_explain_with_fewer_images_shows_only_those(report_runs, tmp_path, capsys):
    from csg_interp.report import load_report_data

    run = shutil.copytree(report_runs["csg"], tmp_path / "csg")
    assert main(["explain", str(run), "--images", "0", "1", "--no-figures", "--jobs", "1"]) == 0
    data = load_report_data(run)
    assert [entry["source"] for entry, _ in data.main.explanations] == ["test[0]", "test[1]"]
    assert data.main.sanity.stale.startswith("left by an earlier csg-interp explain run")
    assert "explain/002_test_2_.npz" in data.main.left_out
    result = write_report(run, out=tmp_path / "fewer.html")
    page = result.path.read_text()
    grid = [c for c in result.figures if c.startswith("CSG model, explained")]
    assert len(grid) == 1 and "(test[0], test[1])" in grid[0]
    assert "test[2]" not in page.split(">Localization</h2>")[0].split(">Explanations</h2>")[1]
    assert "The sanity check is left out: left by an earlier csg-interp explain run" in page
    assert "sanity check" not in _card(page)
    assert "explain/003_test_3_.npz" in page  # named among the left-out files


def test_report_without_baseline_has_no_comparison_figures(report_runs, tmp_path):
    result = write_report(report_runs["csg"], out=tmp_path / "solo.html")
    # Curves, the gate heatmap alone, the MI heatmap alone, explanations, overlays, 2 ROC.
    assert len(result.figures) == EXPECTED_FIGURES
    assert not any(caption.startswith("Top to bottom") for caption in result.figures)
    assert any(caption.startswith("gate G") for caption in result.figures)
    card = _card(result.path.read_text())
    assert card["accuracy"][0].startswith("CSG ") and " · STD " in card["accuracy"][0]


def test_report_of_an_std_run_has_no_gate_section(report_runs, tmp_path):
    result = write_report(report_runs["std"], out=tmp_path / "std.html")
    assert result.sections == ["Summary", "Training", "Which filters serve which class",
                               "Provenance"]
    assert len(result.figures) == 2  # curves and the MI heatmap (from metrics.json)


def test_report_errors(report_runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        write_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        write_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="baseline run directory"):
        write_report(report_runs["csg"], baseline=tmp_path / "missing", out=tmp_path / "x.html")
    broken = shutil.copytree(report_runs["std"], tmp_path / "broken")
    (broken / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(broken)
    with pytest.raises(ValueError, match="max_images"):
        write_report(report_runs["std"], max_images=-1)


def test_cli_report_prints_the_path(report_runs, tmp_path, capsys):
    out = tmp_path / "cli.html"
    # The STD run alone (cheap to draw): training curves and the MI heatmap.
    code = main(["report", str(report_runs["std"]), "--out", str(out), "--checkpoint", "best"])
    assert code == 0
    assert f"report: {out} (2 figures" in capsys.readouterr().out
    assert out.read_text().count("<img ") == 2
    assert main(["report", str(tmp_path / "nowhere")]) == 1


# ------------------------------------------------------------- in a browser
#: Measures the layout rules once the page has loaded and writes them into the DOM.
_PROBE = """<script>window.addEventListener("load", function () {
  var doc = document.documentElement, out = document.createElement("pre");
  var images = Array.prototype.map.call(document.images, function (i) {
    var column = i.closest("figure").parentElement.getBoundingClientRect().width;
    return {w: i.getBoundingClientRect().width, natural: i.naturalWidth, column: column};
  });
  var figures = Array.prototype.map.call(document.querySelectorAll("figure"), function (f) {
    var c = f.querySelector("figcaption"); return c ? c.textContent.trim().length : 0;
  });
  out.id = "csg-probe";
  out.textContent = JSON.stringify({scroll: doc.scrollWidth, viewport: window.innerWidth,
                                    images: images, captions: figures});
  document.body.appendChild(out);
});</script>"""


def _chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@needs_chromium
def test_report_layout_in_headless_chromium_at_1280_px(report_runs, tmp_path):
    from PIL import Image

    page = report_runs["result"].path.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    dom = _chromium(tmp_path, "--window-size=1280,1000", "--virtual-time-budget=10000",
                    "--dump-dom", probe.as_uri()).stdout
    match = re.search(r'<pre id="csg-probe">([^<]*)</pre>', dom)
    assert match, "the probe script did not run: the page did not load"
    layout = json.loads(match.group(1).replace("&quot;", '"'))
    assert layout["viewport"] == 1280
    assert layout["scroll"] <= layout["viewport"], "the page scrolls sideways at 1280 px"
    assert len(layout["images"]) == EXPECTED_FIGURES
    assert all(image["natural"] > 0 for image in layout["images"]), "an image did not decode"
    too_wide = [i for i in layout["images"] if i["w"] > i["column"] + 0.5]
    assert not too_wide, f"images wider than their column: {too_wide}"
    assert len(layout["captions"]) == EXPECTED_FIGURES and min(layout["captions"]) > 40

    # A screenshot to look at (kept under the test's tmp dir), and not blank.
    shot = tmp_path / "report-1280.png"
    _chromium(tmp_path, "--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={shot}",
              report_runs["result"].path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (4000, 1280)
    assert (pixels < 200).mean() > 0.02 and pixels.std() > 20


@needs_chromium
def test_report_prints_to_pdf(report_runs, tmp_path):
    pdf = tmp_path / "report.pdf"
    _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
              report_runs["result"].path.as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 50_000


def test_demo_ends_with_the_report_stage(report_runs, tmp_path, capsys):
    from csg_interp.demo import STAGES, DemoContext, stage_report

    assert STAGES[-1] == ("report", stage_report)
    run = shutil.copytree(report_runs["std"], tmp_path / "only")  # cheap to draw
    context = DemoContext(tmp_path, "digits", None, "cpu", 0, True)
    context.runs = {"csg": run}
    stage_report(context)
    assert context.artifacts["report"] == run / "report.html"
    assert f"[report] open {(run / 'report.html').resolve()}" in capsys.readouterr().out
    context.runs = {}
    stage_report(context)
    assert "skipped" in capsys.readouterr().out
