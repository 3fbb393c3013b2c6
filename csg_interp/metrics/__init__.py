"""Entanglement metrics: pooled features, the filter × class MI matrix, MIS and its ceiling,
accuracy, gate/MI agreement, a gate from MI for any model, the filter table, and a paired
bootstrap interval for comparing two methods on the same images.

Protocol: Liang et al. (2020) and their code ``hyliang96/CSGCNN`` (``mutualinfo.py``), restated in
``docs/metrics.md``.
"""

from .evaluation import METRICS_SCHEMA, compare_metrics, evaluate_network, summarize
from .features import Outputs, extract_features, extract_outputs, resolve_device
from .filter_table import FilterTable, filter_table
from .intervals import paired_bootstrap_interval
from .mutual_information import (
    BACKENDS,
    mutual_information_matrix,
    normalize_per_filter,
    per_class_mutual_information,
    stratified_subset,
)
from .runs import compare_runs, evaluate_run, load_metrics, run_filter_table
from .scores import accuracy, gate_from_mi, gate_mi_agreement, mi_ceiling, mi_score

__all__ = [
    "BACKENDS",
    "METRICS_SCHEMA",
    "compare_metrics",
    "compare_runs",
    "evaluate_network",
    "evaluate_run",
    "load_metrics",
    "run_filter_table",
    "stratified_subset",
    "summarize",
    "FilterTable",
    "Outputs",
    "accuracy",
    "extract_features",
    "extract_outputs",
    "filter_table",
    "gate_from_mi",
    "gate_mi_agreement",
    "mi_ceiling",
    "mi_score",
    "mutual_information_matrix",
    "normalize_per_filter",
    "paired_bootstrap_interval",
    "per_class_mutual_information",
    "resolve_device",
]
