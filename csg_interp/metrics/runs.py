"""The old home of the run-directory metrics workflows, kept so existing imports keep working.

The workflows now live in :mod:`csg_interp.workflows` (``evaluate``, ``filters``, ``compare``),
which return Result objects. The names here keep their old return types: :func:`evaluate_run`
and :func:`compare_runs` return plain dicts, :func:`run_filter_table` a
``(table, csv_path, json_path)`` tuple. These are compatibility re-exports (the one kind of
upward import the layer test allows besides the Display names); new code should import from
:mod:`csg_interp.workflows`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .filter_table import FilterTable

__all__ = [
    "SPLITS",
    "DEFAULT_TARGETS",
    "evaluate_run",
    "load_metrics",
    "run_filter_table",
    "compare_runs",
]

_MOVED = {"SPLITS", "DEFAULT_TARGETS"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from csg_interp.workflows import evaluate

        return getattr(evaluate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_metrics(run_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
    """:func:`csg_interp.workflows.evaluate.load_metrics` (the matching ``metrics.json``)."""
    from csg_interp.workflows.evaluate import load_metrics as workflow

    return workflow(run_dir, *args, **kwargs)


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", **kwargs: Any) -> dict[str, Any]:
    """:func:`csg_interp.workflows.evaluate_run`, returning the ``metrics.json`` payload (dict)."""
    from csg_interp.workflows.evaluate import evaluate_run as workflow

    return workflow(run_dir, split, **kwargs).metrics


def run_filter_table(
    run_dir: str | os.PathLike, split: str = "test", **kwargs: Any
) -> tuple[FilterTable, Path, Path]:
    """:func:`csg_interp.workflows.filters_run`, returning ``(table, csv_path, json_path)``."""
    from csg_interp.workflows.filters import filters_run

    result = filters_run(run_dir, split, **kwargs)
    return result.table, result.csv_path, result.json_path


def compare_runs(
    csg_dirs: Sequence[str | os.PathLike],
    std_dirs: Sequence[str | os.PathLike],
    split: str = "test",
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`csg_interp.workflows.compare_run`, returning the comparison as a dict."""
    from csg_interp.workflows.compare import compare_run

    return compare_run(csg_dirs, std_dirs, split, **kwargs).comparison
