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
from dataclasses import dataclass
from pathlib import Path

from .._utils import write_text_atomic
from .data import load_report_data
from .render import render_report
from .tables import flatten_metrics, json_tables  # re-exported: their old home

__all__ = ["ReportResult", "write_report", "ANALYSIS_FOLDERS", "flatten_metrics", "json_tables"]

#: Sub-folders written by ``explain``, ``localize`` and ``detect``, in report order.
ANALYSIS_FOLDERS: dict[str, str] = {
    "explain": "Explanations",
    "localize": "Localization",
    "detect": "Adversarial-sample detection",
}


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
