"""The per-run HTML report (``csg-interp report``) and the figures only it draws.

:func:`write_report` = :func:`load_report_data` (reads the run directory's files) +
:func:`render_report` (lays the document out); either side can change on its own.
"""

from .build import ANALYSIS_FOLDERS, ReportResult, flatten_metrics, json_tables, write_report
from .curves import CURVE_PANELS, plot_training_curves
from .data import ReportData, RunData, Source, load_report_data
from .figures import plot_explanation_grid, plot_overlay_rows
from .html import HtmlReport, figure_to_data_uri, image_file_to_data_uri
from .render import render_report, summary_rows

__all__ = [
    "ANALYSIS_FOLDERS",
    "CURVE_PANELS",
    "HtmlReport",
    "ReportData",
    "ReportResult",
    "RunData",
    "Source",
    "figure_to_data_uri",
    "flatten_metrics",
    "image_file_to_data_uri",
    "json_tables",
    "load_report_data",
    "plot_explanation_grid",
    "plot_overlay_rows",
    "plot_training_curves",
    "render_report",
    "summary_rows",
    "write_report",
]
