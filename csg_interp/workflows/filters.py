"""``filters``: the filter table of a run (``filters.csv`` / ``filters.json``, one row per filter).

The MI matrix comes from the run's ``metrics.json`` when it matches, else from
:func:`~csg_interp.workflows.evaluate.evaluate_run` (which writes it). The gate columns are empty
for an STD run. The columns are described in :mod:`csg_interp.metrics.filter_table`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csg_interp.metrics.filter_table import FilterTable, filter_table

from ._result import RunResult
from .evaluate import evaluate_run

__all__ = ["FiltersResult", "filters_run"]


@dataclass
class FiltersResult(RunResult):
    """The filter table of a run and the two files it was written to.

    Attributes:
        table: the :class:`~csg_interp.metrics.FilterTable`.
        csv_path: ``filters.csv``.
        json_path: ``filters.json``.
    """

    FILENAME = "filters.json"

    table: FilterTable
    csv_path: Path
    json_path: Path

    def to_dict(self) -> dict[str, Any]:
        table = self.table
        return {"class_names": table.class_names, "columns": table.columns, "rows": table.rows}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> FiltersResult:
        table = FilterTable(payload["rows"], payload["class_names"], payload["columns"])
        return cls(table, path.with_suffix(".csv"), path)

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write ``filters.csv`` and ``filters.json`` (atomically) into ``run_dir``."""
        folder = Path(run_dir)
        self.csv_path = self.table.to_csv(folder / "filters.csv")
        self.json_path = self.table.to_json(folder / "filters.json")
        return self.json_path

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> FiltersResult:
        path = cls.path_in(run_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run csg-interp filters first")
        return cls.from_dict(json.loads(path.read_text()), path)

    def summary(self) -> str:
        table = self.table
        names = table.class_names
        by_mi = table.counts("mi")
        has_gate = table.rows and table.rows[0]["gate_class"] is not None
        by_gate = table.counts("gate") if has_gate else None
        lines = [f"{'class':>14} {'filters (MI)':>13} {'filters (gate)':>15}"]
        for c, name in enumerate(names):
            gate_count = str(by_gate[c]) if by_gate else "–"
            lines.append(f"{name:>14} {by_mi[c]:>13} {gate_count:>15}")
        if has_gate:
            agree = sum(bool(r["agree"]) for r in table.rows)
            lines.append(f"gate and MI agree on {agree} of {len(table)} filters")
        lines.append(f"wrote {self.csv_path} and {self.json_path}")
        return "\n".join(lines)


def filters_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    out: str | os.PathLike | None = None,
    max_samples: int | None = None,
    checkpoint: str = "last",
    **kwargs: Any,
) -> FiltersResult:
    """Write ``filters.csv`` and ``filters.json`` for a run (one row per filter).

    Args:
        run_dir: a directory written by ``csg-interp train``.
        split: the split of the MI matrix.
        out: the output folder (default ``run_dir``).
        max_samples: a stratified cap on the MI samples.
        checkpoint: ``last`` or ``best``.
        **kwargs: passed to :func:`~csg_interp.workflows.evaluate.evaluate_run` (``device``,
            ``data_root``, ``n_jobs``, ``recompute``...).

    Returns:
        A :class:`FiltersResult`.

    Example:
        >>> print(filters_run("runs/csg").summary())  # doctest: +SKIP
    """
    from csg_interp.errors import check_output_parent
    from csg_interp.training.runs import load_run

    if out is not None:
        check_output_parent(out, "out")
    metrics = evaluate_run(
        run_dir, split, max_samples=max_samples, checkpoint=checkpoint, **kwargs
    ).metrics
    run = load_run(run_dir, checkpoint=checkpoint)
    gate = run.net.gate.weight.detach() if run.net.gate is not None else None
    table = filter_table(np.asarray(metrics["mi_matrix"]), gate, metrics["class_names"])
    folder = Path(out) if out is not None else Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    result = FiltersResult(table, folder / "filters.csv", folder / "filters.json")
    result.save(folder)
    return result
