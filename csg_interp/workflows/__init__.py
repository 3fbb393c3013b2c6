"""Run workflows: one module per thing a command does to a run directory.

Each module defines ``<name>_run(run_dir, ...) -> <Name>Result``; the result is a dataclass
with ``save(run_dir)`` (atomic), ``load(run_dir)`` and ``summary()`` (what the command prints).
``train_run(config)`` trains into ``config.out`` and returns a ``TrainResult`` (the run's own
``manifest.json``). This layer sits above ``plotting``, ``applications``, ``attribution``,
``metrics`` and ``training`` and below ``report`` and the command line (see
``docs/architecture.md``).

Example:
    >>> from csg_interp.workflows import evaluate_run
    >>> result = evaluate_run("runs/csg", baseline="runs/std")  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
"""

from ._result import RunResult
from .atlas import AtlasResult, atlas_run
from .compare import CompareResult, compare_run
from .detect import DetectResult, detect_run
from .evaluate import EvaluateResult, evaluate_run
from .explain import ExplainResult, explain_run
from .filters import FiltersResult, filters_run
from .localize import LocalizeResult, localize_run
from .train import TrainResult, train_run

__all__ = [
    "AtlasResult",
    "CompareResult",
    "DetectResult",
    "EvaluateResult",
    "ExplainResult",
    "FiltersResult",
    "LocalizeResult",
    "RunResult",
    "TrainResult",
    "atlas_run",
    "compare_run",
    "detect_run",
    "evaluate_run",
    "explain_run",
    "filters_run",
    "localize_run",
    "train_run",
]
