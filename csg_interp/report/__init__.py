"""The per-run HTML report (``csg-interp report``) and the figures only it draws."""

from .build import ANALYSIS_FOLDERS, ReportResult, flatten_metrics, json_tables, write_report
from .curves import CURVE_PANELS, plot_training_curves
from .html import HtmlReport, figure_to_data_uri, image_file_to_data_uri

__all__ = [
    "ANALYSIS_FOLDERS",
    "CURVE_PANELS",
    "HtmlReport",
    "ReportResult",
    "figure_to_data_uri",
    "flatten_metrics",
    "image_file_to_data_uri",
    "json_tables",
    "plot_training_curves",
    "write_report",
]
