"""Metrics of trained run directories: ``metrics.json``, the filter table, several seeds compared.

The library side of ``csg-interp evaluate``, ``filters`` and ``compare``. A run's metrics are
written to ``RUN_DIR/metrics.json`` (schema :data:`~csg_interp.metrics.evaluation.METRICS_SCHEMA`)
and reused when the split, sample cap and checkpoint match, so ``filters`` and ``compare`` do not
recompute the MI matrix of a run that ``evaluate`` has already measured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csg_interp._utils import resolve_device, write_json_atomic

from .evaluation import METRICS_SCHEMA, compare_metrics, evaluate_network, summarize
from .filter_table import FilterTable, filter_table

__all__ = [
    "SPLITS",
    "DEFAULT_TARGETS",
    "evaluate_run",
    "load_metrics",
    "run_filter_table",
    "compare_runs",
]

SPLITS: tuple[str, ...] = ("test", "val", "train")

#: The bar of issue 4 (means over seeds): CSG's MIS above STD's for every seed pair, at least half
#: the STD→ceiling gap closed, accuracy within 1 point, L1-density at most 0.15.
DEFAULT_TARGETS: dict[str, float] = {
    "gap_closed_min": 0.5,
    "accuracy_drop_max_points": 1.0,
    "l1_density_max": 0.15,
}


def load_metrics(
    run_dir: str | os.PathLike,
    split: str = "test",
    max_samples: int | None = None,
    checkpoint: str = "last",
) -> dict[str, Any] | None:
    """The run's ``metrics.json`` if it was measured with these settings, else ``None``."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    wanted = {"schema": METRICS_SCHEMA, "split": split, "max_samples": max_samples,
              "checkpoint": checkpoint}  # fmt: skip
    if any(payload.get(key) != value for key, value in wanted.items()):
        return None
    return payload


def evaluate_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    baseline: str | os.PathLike | None = None,
    max_samples: int | None = None,
    checkpoint: str = "last",
    device: str = "cpu",
    data_root: str | None = None,
    n_jobs: int | None = -1,
    recompute: bool = False,
    write: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure a run (and optionally its STD baseline) and write ``RUN_DIR/metrics.json``.

    Args:
        run_dir: a directory written by ``csg-interp train``.
        split: ``test`` (the paper's choice), ``val`` or ``train`` (no augmentation).
        baseline: an STD run to compare with; it is measured (and its own ``metrics.json``
            written) on the same split and N, and the result gains ``baseline`` and
            ``comparison`` (:func:`~csg_interp.metrics.compare_metrics`).
        max_samples: a stratified cap on the samples used for the MI figures.
        checkpoint: ``last`` (the paper's) or ``best``.
        device: where the forward passes run (``auto``: CUDA when available).
        data_root: the data set's folder, if it moved since training.
        n_jobs: MI workers (values do not depend on it).
        recompute: ignore a matching ``metrics.json``.
        write: write ``metrics.json``.
        progress: progress bars.

    Returns:
        The ``metrics.json`` payload.

    Raises:
        FileNotFoundError: no run directory or checkpoint.
        ValueError: unknown split.
    """
    from csg_interp.training.runs import load_run

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    device = str(resolve_device(device))  # "auto" -> cuda when available, else cpu
    cached = None if recompute else load_metrics(run_dir, split, max_samples, checkpoint)
    if cached is not None:
        payload = cached
    else:
        run = load_run(run_dir, checkpoint=checkpoint, device=device)
        overrides = {"data_root": data_root} if data_root else {}
        bundle = run.load_data(**overrides)
        data = getattr(bundle, split)
        metrics = evaluate_network(
            run.net, data, class_names=bundle.classes, device=device, max_samples=max_samples,
            n_jobs=n_jobs, progress=progress,
        )  # fmt: skip
        payload = {
            "schema": METRICS_SCHEMA,
            "run_dir": str(run_dir),
            "checkpoint": checkpoint,
            "epochs_done": run.epochs_done,
            "dataset": run.config.dataset,
            "model": run.config.model,
            "split": split,
            "max_samples": max_samples,
            **{k: v for k, v in metrics.items() if k != "schema"},
        }
    if baseline is not None:
        base = evaluate_run(
            baseline, split, max_samples=max_samples, checkpoint=checkpoint, device=device,
            data_root=data_root, n_jobs=n_jobs, recompute=recompute, write=write,
            progress=progress,
        )  # fmt: skip
        payload = dict(payload)
        payload["baseline"] = {k: base[k] for k in ("run_dir", "kind", *_SCALARS) if k in base}
        payload["comparison"] = compare_metrics(payload, base)
    if write:
        write_json_atomic(Path(run_dir) / "metrics.json", payload, indent=1)
    return payload


_SCALARS = ("n_mi", "accuracy", "mis", "mis_normalized", "mi_ceiling", "l1_density",
            "gate_mi_agreement")  # fmt: skip


def run_filter_table(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    out: str | os.PathLike | None = None,
    max_samples: int | None = None,
    checkpoint: str = "last",
    **kwargs: Any,
) -> tuple[FilterTable, Path, Path]:
    """Write ``filters.csv`` and ``filters.json`` for a run (one row per filter).

    The MI matrix comes from the run's ``metrics.json`` when it matches, else from
    :func:`evaluate_run` (which writes it). The gate columns are empty for an STD run.

    Returns:
        ``(table, csv_path, json_path)``.
    """
    from csg_interp.training.runs import load_run

    metrics = evaluate_run(run_dir, split, max_samples=max_samples, checkpoint=checkpoint, **kwargs)
    run = load_run(run_dir, checkpoint=checkpoint)
    gate = run.net.gate.weight.detach() if run.net.gate is not None else None
    table = filter_table(np.asarray(metrics["mi_matrix"]), gate, metrics["class_names"])
    folder = Path(out) if out is not None else Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return table, table.to_csv(folder / "filters.csv"), table.to_json(folder / "filters.json")


def compare_runs(
    csg_dirs: Sequence[str | os.PathLike],
    std_dirs: Sequence[str | os.PathLike],
    split: str = "test",
    *,
    targets: dict[str, float] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """CSG seeds against STD seeds: per-run figures, mean ± std per side and the target checks.

    Args:
        csg_dirs: CSG run directories (one per seed).
        std_dirs: STD run directories (one per seed).
        split: the split every run is measured on.
        targets: thresholds, default :data:`DEFAULT_TARGETS`.
        **kwargs: passed to :func:`evaluate_run` (``max_samples``, ``checkpoint``, ``device``...).

    Returns:
        A dict with the keys ``csg`` and ``std`` (each ``{"runs": [...], "summary": ...}``),
        ``comparison`` and ``checks`` (``{name: {"value": ..., "target": ..., "passed": bool}}``);
        the gap and ratio use the means over seeds, the ceiling comes from the STD runs.

    Raises:
        ValueError: if either side is empty or a CSG directory holds an STD run (or vice versa).
    """
    if not csg_dirs or not std_dirs:
        raise ValueError("compare needs at least one CSG run (--csg) and one STD run (--std)")
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    sides: dict[str, list[dict[str, Any]]] = {}
    for side, dirs in (("csg", csg_dirs), ("std", std_dirs)):
        sides[side] = [evaluate_run(d, split, **kwargs) for d in dirs]
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
    brief = ("run_dir", *_SCALARS)
    return {
        "schema": METRICS_SCHEMA,
        "split": split,
        "csg": {"runs": [{k: r.get(k) for k in brief} for r in sides["csg"]],
                "summary": summaries["csg"]},
        "std": {"runs": [{k: r.get(k) for k in brief} for r in sides["std"]],
                "summary": summaries["std"]},
        "comparison": comparison,
        "checks": checks,
        "passed": all(check["passed"] for check in checks.values()),
    }  # fmt: skip
