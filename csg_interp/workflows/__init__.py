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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - the names below are imported on first use
    from ._result import RunResult
    from .atlas import AtlasResult, atlas_run
    from .compare import CompareResult, compare_run
    from .detect import DetectResult, detect_run
    from .evaluate import EvaluateResult, evaluate_run
    from .explain import ExplainResult, explain_run
    from .filters import FiltersResult, filters_run
    from .localize import LocalizeResult, localize_run
    from .train import TrainResult, train_run

#: Each public name → the module of this package that defines it. A name is imported when it is
#: first used, so a workflow pays only for its own imports (``train`` does not load the
#: plotting and attack stack of the analysis workflows).
_HOMES: dict[str, str] = {
    "RunResult": "_result",
    "AtlasResult": "atlas",
    "atlas_run": "atlas",
    "CompareResult": "compare",
    "compare_run": "compare",
    "DetectResult": "detect",
    "detect_run": "detect",
    "EvaluateResult": "evaluate",
    "evaluate_run": "evaluate",
    "ExplainResult": "explain",
    "explain_run": "explain",
    "FiltersResult": "filters",
    "filters_run": "filters",
    "LocalizeResult": "localize",
    "localize_run": "localize",
    "TrainResult": "train",
    "train_run": "train",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562).

    Args:
        name: the attribute asked for.

    Returns:
        The function or class.

    Raises:
        AttributeError: for a name this package does not define.
    """
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


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
