"""The per-run HTML report: its parts by value, the whole file on a tiny trained pair, and the file
opened in headless Chromium (every image decodes, the page is not blank)."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import csv  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

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
def _write_filters_csv(path, mi: np.ndarray, names: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filter", "mi_class_name", "mi_max"] + [f"mi:{n}" for n in names])
        for k in range(mi.shape[1]):
            writer.writerow([k, names[int(mi[:, k].argmax())], mi[:, k].max(), *mi[:, k]])


def _save_png(path, value: float) -> None:
    figure, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.full((4, 4), value), vmin=0, vmax=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


@pytest.fixture(scope="module")
def report_runs(tiny_digits_pair, tmp_path_factory):
    """Copies of the tiny pair, the CSG run holding one file of every kind the report reads.

    Expected figures (7): training curves, gate, four-panel (the baseline is an STD model), MI
    comparison (both runs have filters.csv), two explanation PNGs, one detection PNG.
    """
    root = tmp_path_factory.mktemp("report_runs")
    csg = shutil.copytree(tiny_digits_pair["csg"], root / "csg")
    std = shutil.copytree(tiny_digits_pair["std"], root / "std")
    names = json.loads((csg / "manifest.json").read_text())["data"]["classes"]
    rng = np.random.default_rng(0)
    _write_filters_csv(csg / "filters.csv", rng.random((len(names), 32)) * 0.2, names)
    _write_filters_csv(std / "filters.csv", rng.random((len(names), 32)) * 0.1, names)
    (csg / "metrics.json").write_text(json.dumps({"accuracy": 0.875, "mi": {"score": 0.25}}))
    (std / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "mi": {"score": 0.125}}))
    _save_png(csg / "explain" / "image_0.png", 0.2)
    _save_png(csg / "explain" / "image_1.png", 0.8)
    (csg / "explain" / "index.json").write_text(json.dumps({
        "version": 1, "images": [
            {"source": "test[0]", "predicted_name": "3", "probability": 0.9, "label_name": "3",
             "png": "image_0.png",
             "filters": [{"filter": 4, "gate": 1.0}, {"filter": 7, "gate": 0.6}]},
            {"source": "test[1]", "predicted_name": "5", "probability": 0.8, "label_name": "8",
             "png": "image_1.png", "filters": []},
        ]}))
    _save_png(csg / "detect" / "roc_pgd.png", 0.5)
    (csg / "detect" / "metrics.json").write_text(json.dumps({
        "protocol": {"attack": "pgd", "eps": [0.1]},
        "rows": [{"model": "csg", "score": "gate", "auc": 0.9375},
                 {"model": "std", "score": "mi-gate", "auc": 0.625}],
    }))
    result = write_report(csg, baseline=std)
    return {"csg": csg, "std": std, "result": result}


EXPECTED_FIGURES = 7


def test_report_embeds_one_image_per_figure_and_no_external_url(report_runs):
    result = report_runs["result"]
    page = result.path.read_text()
    assert result.path == report_runs["csg"] / "report.html"
    assert len(result.figures) == EXPECTED_FIGURES
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == EXPECTED_FIGURES
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(link.startswith(("data:", "#")) for link in links)
    assert result.sections == [
        "Run", "Metrics", "Training curves", "Gate", "Filters", "Explanations",
        "Adversarial-sample detection",
    ]
    # Metrics side by side, the baseline's values in their own column.
    assert "<td>accuracy</td><td>0.8750</td><td>0.9000</td>" in page
    # Explanation images are captioned from explain/index.json.
    assert "image_0.png: predicted 3, p = 0.900, label 3" in result.figures
    assert "image_1.png: predicted 5, p = 0.800, label 8" in result.figures
    assert result.figures[-1] == "roc_pgd.png"
    # JSON records become tables: the detection rows, the explained images with their filters.
    assert "<td>csg</td><td>gate</td><td>0.9375</td>" in page
    assert "<td>image_0.png</td><td>4, 7</td>" in page


def test_report_without_baseline_has_no_comparison_figures(report_runs, tmp_path):
    result = write_report(report_runs["csg"], out=tmp_path / "solo.html")
    # Curves, gate, MI heatmap, two explanation images, detection PNG: no four-panel figure.
    assert len(result.figures) == EXPECTED_FIGURES - 1
    assert not any("Top to bottom" in caption for caption in result.figures)
    assert (tmp_path / "solo.html").is_file()


def test_report_of_an_std_run_has_no_gate_section(report_runs, tmp_path):
    result = write_report(report_runs["std"], out=tmp_path / "std.html")
    assert result.sections == ["Run", "Metrics", "Training curves", "Filters"]
    assert len(result.figures) == 2


def test_report_builds_mi_figure_and_filter_table_from_metrics_json(report_runs, tmp_path):
    # What the demo leaves: metrics.json from `evaluate` (with the MI matrix), no filters.csv.
    run = shutil.copytree(report_runs["csg"], tmp_path / "csg",
                          ignore=shutil.ignore_patterns("filters.csv", "explain", "detect"))
    names = json.loads((run / "manifest.json").read_text())["data"]["classes"]
    mi = np.zeros((len(names), 32))
    mi[np.arange(32) % len(names), np.arange(32)] = 0.25  # filter k informs about class k mod C
    (run / "metrics.json").write_text(json.dumps({"class_names": names, "mi_matrix": mi.tolist()}))
    result = write_report(run)
    assert result.sections == ["Run", "Metrics", "Training curves", "Gate", "Filters"]
    assert result.figures[-1].startswith("mutual information (10 classes × 32 filters)")
    page = result.path.read_text()
    assert "built from metrics.json&#x27;s MI matrix and the gate" in page
    # Filter 13 informs about class 3: the table's mi_class_name column says so.
    assert re.search(r"<tr><td>13</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>3</td>", page)


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


def test_cli_report_prints_the_path(report_runs, tmp_path, capsys):
    out = tmp_path / "cli.html"
    # The STD run alone (cheap to draw): training curves and the MI heatmap.
    code = main(["report", str(report_runs["std"]), "--out", str(out), "--checkpoint", "best"])
    assert code == 0
    assert f"report: {out} (2 figures" in capsys.readouterr().out
    assert out.read_text().count("<img ") == 2
    assert main(["report", str(tmp_path / "nowhere")]) == 1


# ------------------------------------------------------------- in a browser
_PROBE = """<script>window.addEventListener("load", function () {
  var out = document.createElement("pre"); out.id = "csg-probe";
  out.textContent = JSON.stringify(Array.prototype.map.call(document.images,
    function (i) { return [i.naturalWidth, i.naturalHeight]; }));
  document.body.appendChild(out);
});</script>"""


def _chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@needs_chromium
def test_report_renders_in_headless_chromium(report_runs, tmp_path):
    from PIL import Image

    page = report_runs["result"].path.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    dom = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    match = re.search(r'<pre id="csg-probe">([^<]*)</pre>', dom)
    assert match, "the probe script did not run: the page did not load"
    sizes = json.loads(match.group(1))
    assert len(sizes) == EXPECTED_FIGURES
    assert all(width > 0 and height > 0 for width, height in sizes), sizes

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={shot}",
              report_runs["result"].path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    # Not blank: a real share of the page is ink (text, tables, figures), not background.
    assert (pixels < 200).mean() > 0.02
    assert pixels.std() > 20


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
