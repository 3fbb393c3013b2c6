"""``compare``: CSG seeds against STD seeds (per-run figures, mean ± std per side, the targets).

Each run is measured once by :func:`~csg_interp.workflows.evaluate.evaluate_run` (its
``metrics.json`` is reused when the settings match). The targets are
:data:`~csg_interp.workflows.evaluate.DEFAULT_TARGETS` unless given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csg_interp._utils import format_value, write_json_atomic
from csg_interp.metrics.evaluation import METRICS_SCHEMA, compare_metrics, summarize

from ._result import RunResult
from .evaluate import DEFAULT_TARGETS, SCALARS, evaluate_run

__all__ = ["CompareResult", "compare_run"]


def _mean_std(summary: dict[str, Any], key: str) -> str:
    entry = summary.get(key)
    if not isinstance(entry, dict):
        return "–"
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}"


@dataclass
class CompareResult(RunResult):
    """The comparison of CSG and STD runs over seeds.

    Attributes:
        comparison: ``csg`` and ``std`` (each ``{"runs": [...], "summary": ...}``), ``comparison``,
            ``checks`` (``{name: {"value", "target", "passed"}}``), ``passed``, ``split``.

    It belongs to no single run directory: :meth:`save` takes the JSON file to write.
    """

    FILENAME = "compare.json"
    JSON_INDENT = 1

    comparison: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.comparison[key]

    def to_dict(self) -> dict[str, Any]:
        return self.comparison

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> CompareResult:
        return cls(payload)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the comparison atomically to the JSON file ``path`` (a folder gets
        ``compare.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / self.FILENAME
        return write_json_atomic(path, self.comparison, indent=self.JSON_INDENT)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CompareResult:
        path = Path(path)
        if path.is_dir():
            path = path / cls.FILENAME
        return cls(json.loads(path.read_text()))

    def summary(self) -> str:
        result = self.comparison
        lines = [f"{'run':40} {'accuracy':>9} {'MIS':>7} {'MIS norm':>9} {'ceiling':>8} "
                 f"{'density':>8}"]  # fmt: skip
        for side in ("csg", "std"):
            for r in result[side]["runs"]:
                lines.append(
                    f"{side.upper() + ' ' + str(r['run_dir']):40} {format_value(r['accuracy']):>9} "
                    f"{format_value(r['mis']):>7} {format_value(r['mis_normalized']):>9} "
                    f"{format_value(r['mi_ceiling']):>8} {format_value(r['l1_density']):>8}"
                )
        lines.append("")
        keys = [("accuracy", "accuracy"), ("MIS", "mis"), ("MIS (normalised)", "mis_normalized"),
                ("MI ceiling", "mi_ceiling"), ("L1-density", "l1_density")]  # fmt: skip
        n_csg, n_std = len(result["csg"]["runs"]), len(result["std"]["runs"])
        lines.append(f"{'mean ± std':20} {'CSG (%d)' % n_csg:>18} {'STD (%d)' % n_std:>18}")
        for label, key in keys:
            lines.append(f"{label:20} {_mean_std(result['csg']['summary'], key):>18} "
                         f"{_mean_std(result['std']['summary'], key):>18}")  # fmt: skip
        comparison = result["comparison"]
        lines.append(f"\nMIS ratio {format_value(comparison['mis_ratio'], 3)}; gap closed "
                     f"{format_value(comparison['gap_closed'], 3)}; accuracy "
                     f"{comparison['delta_accuracy_points']:+.2f} points")  # fmt: skip
        for name, check in result["checks"].items():
            status = "PASS" if check["passed"] else "FAIL"
            lines.append(f"  [{status}] {name}: {check['value']} (target {check['target']})")
        return "\n".join(lines)


def compare_run(
    csg_dirs: Sequence[str | os.PathLike],
    std_dirs: Sequence[str | os.PathLike],
    split: str = "test",
    *,
    targets: dict[str, float] | None = None,
    **kwargs: Any,
) -> CompareResult:
    """CSG seeds against STD seeds: per-run figures, mean ± std per side and the target checks.

    Args:
        csg_dirs: CSG run directories (one per seed).
        std_dirs: STD run directories (one per seed).
        split: the split every run is measured on.
        targets: thresholds, default :data:`~csg_interp.workflows.evaluate.DEFAULT_TARGETS`.
        **kwargs: passed to :func:`~csg_interp.workflows.evaluate.evaluate_run`
            (``max_samples``, ``checkpoint``, ``device``...).

    Returns:
        A :class:`CompareResult`; the gap and ratio use the means over seeds, the ceiling comes
        from the STD runs.

    Raises:
        ValueError: if either side is empty or a CSG directory holds an STD run (or vice versa).

    Example:
        >>> print(compare_run(["runs/csg_s0"], ["runs/std_s0"]).summary())  # doctest: +SKIP
    """
    if not csg_dirs or not std_dirs:
        raise ValueError("compare needs at least one CSG run (--csg) and one STD run (--std)")
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    sides: dict[str, list[dict[str, Any]]] = {}
    for side, dirs in (("csg", csg_dirs), ("std", std_dirs)):
        sides[side] = [evaluate_run(d, split, **kwargs).metrics for d in dirs]
        for directory, result in zip(dirs, sides[side]):
            if result["kind"] != side:
                raise ValueError(
                    f"{directory} is a {result['kind'].upper()} run but was passed as --{side}"
                )
    summaries = {side: summarize(results) for side, results in sides.items()}
    means = {
        side: {key: value["mean"] for key, value in summary.items() if isinstance(value, dict)}
        | {"n_mi": summary["n_mi"]}
        for side, summary in summaries.items()
    }
    comparison = compare_metrics(means["csg"], means["std"])
    csg_mis = [r["mis"] for r in sides["csg"]]
    std_mis = [r["mis"] for r in sides["std"]]
    density = means["csg"].get("l1_density")
    checks = {
        "every_csg_mis_above_every_std_mis": {
            "value": [min(csg_mis), max(std_mis)], "target": "min CSG > max STD",
            "passed": min(csg_mis) > max(std_mis),
        },
        "gap_closed": {
            "value": comparison["gap_closed"], "target": f">= {targets['gap_closed_min']}",
            "passed": comparison["gap_closed"] is not None
            and comparison["gap_closed"] >= targets["gap_closed_min"],
        },
        "accuracy_within": {
            "value": comparison["delta_accuracy_points"],
            "target": f">= -{targets['accuracy_drop_max_points']} points",
            "passed": comparison["delta_accuracy_points"] >= -targets["accuracy_drop_max_points"],
        },
        "l1_density": {
            "value": density, "target": f"<= {targets['l1_density_max']}",
            "passed": density is not None and density <= targets["l1_density_max"],
        },
    }  # fmt: skip
    brief = ("run_dir", *SCALARS)
    return CompareResult({
        "schema": METRICS_SCHEMA,
        "split": split,
        "csg": {"runs": [{k: r.get(k) for k in brief} for r in sides["csg"]],
                "summary": summaries["csg"]},
        "std": {"runs": [{k: r.get(k) for k in brief} for r in sides["std"]],
                "summary": summaries["std"]},
        "comparison": comparison,
        "checks": checks,
        "passed": all(check["passed"] for check in checks.values()),
    })  # fmt: skip
