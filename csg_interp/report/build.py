"""``report.html`` for a run directory: everything the other commands left there, in one file.

What goes in, when the run directory has it (nothing is recomputed beyond drawing):

==============================  =================================================================
source                          section
==============================  =================================================================
``manifest.json``               header: data set, model, classes, status, final result
``metrics.jsonl``               training curves (losses, accuracies, gate density, learning rates)
``metrics.json``                metric tables (the baseline's side by side with ``--baseline``)
checkpoint (``last.pt``)        the gate heatmap; with a baseline, the four-panel figure
                                (G, W of the CSG model, W of the STD model, G⊙W)
``filters.csv``                 the filter table and the MI heatmap (``mi:<class>`` columns);
                                with a baseline that has one too, the CSG-vs-STD MI comparison;
                                without ``filters.csv`` both come from the ``mi_matrix`` of
                                ``metrics.json`` (and the gate)
``explain/``, ``localize/``,    every PNG/JPEG (up to ``max_images`` per folder: explanations,
``detect/``                     localization overlays, detection ROC curves), every JSON (as
                                tables, :func:`json_tables`) and CSV (as tables)
==============================  =================================================================
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .curves import plot_training_curves
from .html import HtmlReport

__all__ = ["ReportResult", "write_report", "ANALYSIS_FOLDERS", "flatten_metrics", "json_tables"]

#: Sub-folders written by ``explain``, ``localize`` and ``detect``, in report order.
ANALYSIS_FOLDERS: dict[str, str] = {
    "explain": "Explanations",
    "localize": "Localization",
    "detect": "Adversarial-sample detection",
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAX_LIST = 12
_FILTER_COLUMNS = ("filter", "gate_class_name", "gate_value", "open_classes", "mi_class_name",
                   "mi_max", "agree")


@dataclass
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        path: the ``report.html`` file.
        figures: the caption of each embedded image, in page order (one ``<img>`` each).
        sections: the section headings.
    """

    path: Path
    figures: list[str]
    sections: list[str]


# ------------------------------------------------------------------ readers
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); re-run the command that wrote it"
        ) from None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: Any) -> Any:
    """CSV cells back to numbers where they are numbers."""
    if not isinstance(text, str):
        return text
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def flatten_metrics(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON → ``{"a.b.c": scalar}``; short lists are joined, long ones summarised.

    Example:
        >>> flatten_metrics({"csg": {"acc": 0.9, "per_class": [1, 2]}, "n": 3})
        {'csg.acc': 0.9, 'csg.per_class': '1, 2', 'n': 3}
    """
    flat: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for key, value in values.items():
            flat.update(flatten_metrics(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(values, list):
        if values and all(isinstance(v, (int, float, str, bool)) or v is None for v in values):
            if len(values) <= _MAX_LIST:
                flat[prefix] = ", ".join(
                    f"{v:.4g}" if isinstance(v, float) else str(v) for v in values
                )
            else:
                flat[prefix] = f"({len(values)} values)"
        elif values and all(isinstance(v, Mapping) for v in values) and len(values) <= _MAX_LIST:
            for index, value in enumerate(values):
                flat.update(flatten_metrics(value, f"{prefix}[{index}]"))
        else:
            flat[prefix] = f"({len(values)} items)"
    else:
        flat[prefix or "value"] = values
    return flat


def _metric_rows(main: Any, baseline: Any | None) -> list[dict[str, Any]]:
    flat_main = flatten_metrics(main)
    if baseline is None:
        return [{"metric": key, "value": value} for key, value in flat_main.items()]
    flat_base = flatten_metrics(baseline)
    keys = list(flat_main) + [k for k in flat_base if k not in flat_main]
    return [{"metric": k, "run": flat_main.get(k), "baseline": flat_base.get(k)} for k in keys]


def _mi_from_filter_rows(rows: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]] | None:
    """The C×K MI matrix from the ``mi:<class>`` columns of a filter table, if present."""
    if not rows:
        return None
    names = [column[3:] for column in rows[0] if column.startswith("mi:")]
    if not names:
        return None
    ordered = sorted(rows, key=lambda row: int(row["filter"]))
    matrix = np.array([[float(row[f"mi:{name}"]) for row in ordered] for name in names])
    return np.clip(matrix, 0.0, None), names


# ------------------------------------------------------------------ sections
def _header(report: HtmlReport, run_dir: Path, manifest: Mapping[str, Any],
            baseline_dir: Path | None) -> None:
    report.section("Run")
    config = manifest.get("config", {}) if isinstance(manifest.get("config"), Mapping) else {}
    rows = [{"item": "run directory", "value": str(run_dir)}]
    if baseline_dir is not None:
        rows.append({"item": "baseline", "value": str(baseline_dir)})
    for key in ("dataset", "model", "preset", "schedule", "gate", "epochs", "seed"):
        if key in config:
            rows.append({"item": key, "value": config[key]})
    data = manifest.get("data") if isinstance(manifest.get("data"), Mapping) else {}
    classes = data.get("classes") or manifest.get("classes")
    if classes:
        rows.append({"item": "classes", "value": ", ".join(map(str, classes))})
    sizes = data.get("sizes")
    if isinstance(sizes, Mapping):
        rows.append({"item": "images", "value": ", ".join(f"{k} {v}" for k, v in sizes.items())})
    for key in ("status", "updated", "epochs_done", "device"):
        if key in manifest:
            rows.append({"item": key, "value": manifest[key]})
    git = manifest.get("git")
    if git:
        rows.append({"item": "git", "value": git if isinstance(git, str) else json.dumps(git)})
    report.table(rows)
    result = manifest.get("result")
    if isinstance(result, Mapping) and result:
        report.subheading("Final result (manifest)")
        report.table([{"metric": k, "value": v} for k, v in flatten_metrics(result).items()])


def _curves(report: HtmlReport, history: list[dict[str, Any]],
            baseline_history: list[dict[str, Any]] | None) -> None:
    if not history:
        return
    report.section("Training curves")
    figure, _ = plot_training_curves(history, baseline_history)
    caption = "Per-epoch training curves from metrics.jsonl; CSG epochs are shaded."
    if baseline_history:
        caption += " Dashed: the baseline's validation accuracy and loss."
    report.figure(figure, caption)


def _gate(report: HtmlReport, run: Any, baseline_run: Any | None) -> None:
    from csg_interp.attribution.displays import GateHeatmapDisplay, GateWeightPanelsDisplay

    if run is None or run.net.gate is None:
        return
    report.section("Gate")
    display = GateHeatmapDisplay.from_net(run.net, run.classes or None)
    report.figure(display.figure_, display.caption)
    if baseline_run is not None and baseline_run.net.gate is None:
        try:
            panels = GateWeightPanelsDisplay.from_nets(
                run.net, baseline_run.net, run.classes or None
            )
        except ValueError as error:  # a head that is not GAP → linear has no W to show
            report.paragraph(f"Four-panel figure skipped: {error}", note=True)
        else:
            report.figure(panels.figure_, panels.caption)


def _filter_rows(run_dir: Path) -> list[dict[str, Any]] | None:
    path = run_dir / "filters.csv"
    if not path.is_file():
        return None
    return [{k: _number(v) for k, v in row.items()} for row in _read_csv(path)]


def _mi_of(run_dir: Path, rows: list[dict[str, Any]] | None) -> tuple[np.ndarray, list[str]] | None:
    """The run's MI matrix and class names: from ``filters.csv``, else ``metrics.json``."""
    if rows:
        found = _mi_from_filter_rows(rows)
        if found is not None:
            return found
    path = run_dir / "metrics.json"
    if path.is_file():
        metrics = _read_json(path)
        if isinstance(metrics, Mapping) and isinstance(metrics.get("mi_matrix"), list):
            matrix = np.clip(np.asarray(metrics["mi_matrix"], dtype=np.float64), 0.0, None)
            if matrix.ndim == 2:
                names = metrics.get("class_names") or [str(c) for c in range(matrix.shape[0])]
                return matrix, [str(n) for n in names]
    return None


def _filters(
    report: HtmlReport, run_dir: Path, baseline_dir: Path | None, run: Any, baseline_run: Any
) -> None:
    """MI heatmap (or CSG-vs-STD comparison) and the filter table, from ``filters.csv`` or, when
    only ``csg-interp evaluate`` ran, from the MI matrix in ``metrics.json`` and the gate."""
    from csg_interp.attribution.displays import MIComparisonDisplay, MIHeatmapDisplay
    from csg_interp.metrics import filter_table

    rows = _filter_rows(run_dir)
    mi = _mi_of(run_dir, rows)
    if rows is None and mi is None:
        return
    report.section("Filters")
    baseline_mi = _mi_of(baseline_dir, _filter_rows(baseline_dir)) if baseline_dir else None
    if mi is not None and baseline_mi is not None and baseline_mi[0].shape[0] == mi[0].shape[0]:
        names = ("this run", "baseline")
        if run is not None and baseline_run is not None and run.has_gate != baseline_run.has_gate:
            names = ("CSG", "STD") if run.has_gate else ("STD", "CSG")
        display = MIComparisonDisplay.from_matrices(mi[0], baseline_mi[0], mi[1], names=names)
        report.figure(display.figure_, display.caption)
    elif mi is not None:
        display = MIHeatmapDisplay.from_matrix(mi[0], mi[1])
        report.figure(display.figure_, display.caption)
    source = "filters.csv"
    if rows is None and mi is not None:
        gate = None
        if run is not None and run.net.gate is not None:
            gate = run.net.gate.weight.detach()
            if tuple(gate.shape) != mi[0].shape:
                gate = None
        rows = filter_table(mi[0], gate, mi[1]).rows
        source = "built from metrics.json's MI matrix"
        if gate is not None:
            source += " and the gate"
    columns = [c for c in _FILTER_COLUMNS if c in rows[0]] or list(rows[0])
    summary = f"filter table ({len(rows)} filters; {source})"
    report.table(rows, columns, collapsed=summary)


def _cell(value: Any) -> Any:
    """A table cell from a JSON value: scalars as they are, lists summarised."""
    if isinstance(value, list):
        if all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
            if len(value) <= _MAX_LIST:
                return ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
            return f"({len(value)} values)"
        if all(isinstance(v, Mapping) and v for v in value) and len(value) <= _MAX_LIST:
            # e.g. the fired filters of an explanation: their first field, joined
            first = next(iter(value[0]))
            return ", ".join(str(v.get(first)) for v in value)
        return f"({len(value)} items)"
    if isinstance(value, Mapping):
        return f"({len(value)} fields)"
    return value


def _is_record(value: Any) -> bool:
    """A mapping whose values are scalars or lists (one table row)."""
    return isinstance(value, Mapping) and bool(value) and not any(
        isinstance(v, Mapping) for v in value.values()
    )


def json_tables(values: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Tables for a JSON document: one of its scalar fields (``name``/``value``), one per list of
    records, and one per mapping of records (its keys become the first column).

    Example:
        >>> doc = {"n": 2, "rows": [{"auc": 0.9}, {"auc": 0.8}], "models": {"a": {"acc": 1.0}}}
        >>> [(title, len(rows)) for title, rows in json_tables(doc)]
        [('values', 1), ('rows', 2), ('models', 1)]
    """
    scalars: dict[str, Any] = {}
    tables: list[tuple[str, list[dict[str, Any]]]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            if value and all(_is_record(v) for v in value.values()):
                tables.append((path or "values", [{"": key, **{k: _cell(v) for k, v in row.items()}}
                                                  for key, row in value.items()]))
                return
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            rows = [{k: _cell(v) for k, v in row.items()} for row in value]
            tables.append((path or "values", rows))
        else:
            scalars[path or "value"] = _cell(value)

    walk(values, "")
    if scalars:
        tables.insert(0, ("values", [{"name": k, "value": v} for k, v in scalars.items()]))
    return tables


def _image_captions(documents: list[Any]) -> dict[str, str]:
    """Captions for images named in JSON records (``"png": "<file>"``), e.g. explain's index."""
    captions: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            if isinstance(value.get("png"), str):
                parts = []
                if value.get("predicted_name", value.get("predicted")) is not None:
                    parts.append(f"predicted {value.get('predicted_name', value.get('predicted'))}")
                if isinstance(value.get("probability"), float):
                    parts.append(f"p = {value['probability']:.3f}")
                if value.get("label_name", value.get("label")) is not None:
                    parts.append(f"label {value.get('label_name', value.get('label'))}")
                captions[value["png"]] = value["png"] + (f": {', '.join(parts)}" if parts else "")
            for child in value.values():
                visit(child)
        elif isinstance(value, list):
            for child in value:
                visit(child)

    for document in documents:
        visit(document)
    return captions


def _analysis_folder(report: HtmlReport, folder: Path, heading: str, max_images: int) -> None:
    from .html import image_file_to_data_uri

    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    documents = {path: _read_json(path) for path in sorted(folder.rglob("*.json"))}
    csvs = sorted(folder.rglob("*.csv"))
    if not (images or documents or csvs):
        return
    report.section(heading)
    for path, document in documents.items():
        for title, rows in json_tables(document):
            report.subheading(f"{path.relative_to(folder)}: {title}")
            report.table(rows, collapsed=f"{len(rows)} rows" if len(rows) > 30 else None)
    for path in csvs:
        rows = [{k: _number(v) for k, v in row.items()} for row in _read_csv(path)]
        report.table(rows[:200], collapsed=f"{path.relative_to(folder)} ({len(rows)} rows)")
    captions = _image_captions(list(documents.values()))
    for path in images[:max_images]:
        name = str(path.relative_to(folder))
        report.figure(image_file_to_data_uri(path), captions.get(name, name))
    if len(images) > max_images:
        report.paragraph(f"{len(images) - max_images} more image(s) in {folder}", note=True)


# ------------------------------------------------------------------ entry
def _load(run_dir: Path, checkpoint: str) -> Any | None:
    from csg_interp.training import load_run

    if not (run_dir / f"{checkpoint}.pt").is_file():
        return None
    return load_run(run_dir, checkpoint=checkpoint)


def write_report(
    run_dir: str | os.PathLike,
    baseline: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    checkpoint: str = "last",
    max_images: int = 24,
) -> ReportResult:
    """Write one self-contained ``report.html`` for a run (figures embedded, no external URL).

    Args:
        run_dir: the run directory (``csg-interp train`` output, plus whatever ``evaluate``,
            ``filters``, ``explain``, ``localize`` and ``detect`` added).
        baseline: another run to compare with (usually the STD twin).
        out: the HTML file to write (default ``run_dir/report.html``).
        checkpoint: ``last`` or ``best``, for the gate figures.
        max_images: images embedded per analysis folder.

    Returns:
        A :class:`ReportResult` (path, figure captions, sections).

    Raises:
        FileNotFoundError: if ``run_dir`` (or ``baseline``) is not a run directory.
        ValueError: for a malformed JSON file or a bad argument.

    Example:
        >>> result = write_report("runs/demo/csg", baseline="runs/demo/std")  # doctest: +SKIP
        >>> result.path  # doctest: +SKIP
        PosixPath('runs/demo/csg/report.html')
    """
    from csg_interp.training.runs import read_history

    run_dir = Path(run_dir)
    baseline_dir = Path(baseline) if baseline is not None else None
    for directory, what in ((run_dir, "run"), (baseline_dir, "baseline run")):
        if directory is None:
            continue
        if not directory.is_dir():
            raise FileNotFoundError(
                f"{what} directory {directory} not found; train one with csg-interp train --out DIR"
            )
        if not any((directory / name).is_file() for name in ("config.json", "manifest.json")):
            raise FileNotFoundError(
                f"{directory} is not a run directory (no config.json or manifest.json); pass the "
                "folder that csg-interp train wrote"
            )
    if max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    manifest_path = run_dir / "manifest.json"
    manifest = _read_json(manifest_path) if manifest_path.is_file() else {}
    run = _load(run_dir, checkpoint)
    baseline_run = _load(baseline_dir, checkpoint) if baseline_dir is not None else None

    report = HtmlReport(f"csg_interp report: {run_dir.name}")
    _header(report, run_dir, manifest, baseline_dir)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        report.section("Metrics")
        baseline_metrics = None
        if baseline_dir is not None and (baseline_dir / "metrics.json").is_file():
            baseline_metrics = _read_json(baseline_dir / "metrics.json")
        report.table(_metric_rows(_read_json(metrics_path), baseline_metrics))
    _curves(report, read_history(run_dir / "metrics.jsonl"),
            read_history(baseline_dir / "metrics.jsonl") if baseline_dir is not None else None)
    _gate(report, run, baseline_run)
    _filters(report, run_dir, baseline_dir, run, baseline_run)
    for name, heading in ANALYSIS_FOLDERS.items():
        if (run_dir / name).is_dir():
            _analysis_folder(report, run_dir / name, heading, max_images)
    path = Path(out) if out is not None else run_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(report.render(), encoding="utf-8")
    temporary.replace(path)
    return ReportResult(path, list(report.figures), [h for _, h in report._sections])
