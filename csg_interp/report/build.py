"""``report.html`` for a run directory: a document for a reader, in one self-contained file.

:func:`write_report` reads the run directory through
:func:`~csg_interp.report.data.load_report_data` (the only code that knows its layout) and lays
the page out with :func:`~csg_interp.report.render.render_report`:

==============================  =================================================================
source                          what the page shows
==============================  =================================================================
``manifest.json``,              the summary card's model and data line; provenance (config,
``config.json``                 versions, git) folded at the end
``metrics.json``                accuracy, MIS (and ratio), L1-density in the card; the MI
(``csg-interp evaluate``)       matrices of both runs side by side and the filter table
``metrics.jsonl``               training curves (losses, accuracies, gate density, learning rates)
checkpoint (``last.pt``)        the gate; with an STD baseline, G next to W of both models
``explain/index.json`` + npz    a grid per run: image, class map, fired filters with their G;
                                the sanity check when the latest ``explain`` ran it
``localize/metrics.json``       the localization table and labelled overlays (with a legend)
``detect/metrics.json``         the AUC table per ε and score, the ROC figures
==============================  =================================================================

Each section says when its data was computed. A file that does not describe the current run
(older than the checkpoint, another epoch or checkpoint, a sanity table of an earlier
``explain``) is marked stale and kept out of the summary; files an analysis no longer lists
(e.g. the images of an earlier, larger ``explain``) are left out and named in the provenance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._utils import write_text_atomic
from .data import load_report_data
from .render import render_report

__all__ = ["ReportResult", "write_report", "ANALYSIS_FOLDERS", "flatten_metrics", "json_tables"]

#: Sub-folders written by ``explain``, ``localize`` and ``detect``, in report order.
ANALYSIS_FOLDERS: dict[str, str] = {
    "explain": "Explanations",
    "localize": "Localization",
    "detect": "Adversarial-sample detection",
}
_MAX_LIST = 12


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


# ------------------------------------------------------------------ entry
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
    if max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    data = load_report_data(run_dir, baseline, checkpoint)
    report = render_report(data, max_images)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    write_text_atomic(path, report.render())
    return ReportResult(path, list(report.figures), [h for _, h in report._sections])
