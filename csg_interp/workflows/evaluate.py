"""``evaluate``: accuracy, MIS, its ceiling and L1-density of a run, in ``RUN_DIR/metrics.json``.

The file (schema :data:`~csg_interp.metrics.evaluation.METRICS_SCHEMA`) is reused when the split,
sample cap and checkpoint match, so ``filters`` and ``compare`` do not recompute the MI matrix of
a run that ``evaluate`` has already measured. The measures are defined in ``docs/metrics.md``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csg_interp._utils import format_value, resolve_device  # format_value: re-exported
from csg_interp.metrics.evaluation import METRICS_SCHEMA, compare_metrics, evaluate_network

from ._result import RunResult

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TARGETS",
    "SPLITS",
    "EvaluateResult",
    "evaluate_run",
    "format_evaluation",
    "format_value",
    "load_metrics",
]

SPLITS: tuple[str, ...] = ("test", "val", "train")

#: The project's bar for a CSG model against its STD twin (means over seeds): CSG's MIS above
#: STD's for every seed pair, at least half the STD→ceiling gap closed, accuracy within 1 point,
#: L1-density at most 0.15 (see ``docs/metrics.md``).
DEFAULT_TARGETS: dict[str, float] = {
    "gap_closed_min": 0.5,
    "accuracy_drop_max_points": 1.0,
    "l1_density_max": 0.15,
}

#: The scalar figures copied into a comparison (``baseline``) or a seed summary.
SCALARS: tuple[str, ...] = ("n_mi", "accuracy", "mis", "mis_normalized", "mi_ceiling",
                            "l1_density", "gate_mi_agreement")  # fmt: skip


def format_evaluation(result: dict[str, Any]) -> str:
    """The table ``evaluate`` prints, from a ``metrics.json`` payload (with or without baseline)."""
    rows = [("accuracy", "accuracy"), ("MIS", "mis"), ("MIS (normalised)", "mis_normalized"),
            ("MI ceiling", "mi_ceiling"), ("L1-density", "l1_density"),
            ("gate/MI agreement", "gate_mi_agreement")]  # fmt: skip
    base = result.get("baseline")
    lines = [f"{result['split']} split, N = {result['n']} (MI on {result['n_mi']})"]
    header = f"{'':20} {result['kind'].upper() + ' ' + str(result['run_dir']):>28}"
    if base:
        header += f" {base['kind'].upper() + ' ' + str(base['run_dir']):>28}"
    lines.append(header)
    for label, key in rows:
        line = f"{label:20} {format_value(result.get(key)):>28}"
        if base:
            line += f" {format_value(base.get(key)):>28}"
        lines.append(line)
    if base:
        comparison = result["comparison"]
        lines.append(
            f"MIS ratio {format_value(comparison['mis_ratio'], 3)}, gap to the STD ceiling "
            f"closed {format_value(comparison['gap_closed'], 3)}, accuracy "
            f"{comparison['delta_accuracy_points']:+.2f} points"
        )
    for side in (result, base or {}):
        mis, ceiling = side.get("mis"), side.get("mi_ceiling")
        if isinstance(mis, float) and isinstance(ceiling, float) and mis > ceiling:
            lines.append(
                f"note: {side['kind'].upper()} MIS {mis:.4f} is above its MI ceiling "
                f"{ceiling:.4f}: MIS takes each filter's best class while the ceiling averages "
                "MI(logit_c; y = c) over all classes, so filters of the easiest classes can pass "
                "it; the ceiling is a reference, not a bound (docs/metrics.md)"
            )
    lines.append(f"filters per class (MI argmax): {result['filters_per_class_mi']}")
    if result.get("filters_per_class_gate"):
        lines.append(f"filters per class (gate argmax): {result['filters_per_class_gate']}")
    return "\n".join(lines)


@dataclass
class EvaluateResult(RunResult):
    """The figures of one run (the ``metrics.json`` payload), with an optional baseline.

    Attributes:
        metrics: the payload: ``accuracy``, ``mis``, ``mis_normalized``, ``mi_ceiling``,
            ``l1_density``, ``gate_mi_agreement``, ``mi_matrix``, ``class_names``, ... and, with
            a baseline, ``baseline`` and ``comparison``.
        run_dir: the run directory.
    """

    FILENAME = "metrics.json"
    JSON_INDENT = 1

    metrics: dict[str, Any]
    run_dir: Path

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]

    def to_dict(self) -> dict[str, Any]:
        return self.metrics

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> EvaluateResult:
        return cls(payload, path.parent)

    def summary(self) -> str:
        return format_evaluation(self.metrics)


def load_metrics(
    run_dir: str | os.PathLike,
    split: str = "test",
    max_samples: int | None = None,
    checkpoint: str = "last",
) -> dict[str, Any] | None:
    """The run's ``metrics.json`` if it was measured with these settings, else ``None``."""
    path = EvaluateResult.path_in(run_dir)
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


def _say_if_replacing(
    run_dir: str | os.PathLike, split: str, max_samples: int | None, checkpoint: str,
    recompute: bool, write: bool,
) -> None:  # fmt: skip
    """Log (warning) that an existing ``metrics.json`` of other settings is about to be replaced."""
    path = EvaluateResult.path_in(run_dir)
    if not (write and path.is_file()):
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        old = {}
    wanted = {"split": split, "max_samples": max_samples, "checkpoint": checkpoint}
    changed = [f"{k} {old.get(k)!r} → {v!r}" for k, v in wanted.items() if old.get(k) != v]
    why = "recompute requested" if recompute and not changed else ", ".join(changed) or "older schema"
    logger.warning("replacing %s, measured with other settings (%s)", path, why)


def evaluate_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    baseline: str | os.PathLike | None = None,
    max_samples: int | None = None,
    checkpoint: str = "last",
    device: str = "auto",
    data_root: str | None = None,
    n_jobs: int | None = -1,
    recompute: bool = False,
    write: bool = True,
    progress: bool = True,
) -> EvaluateResult:
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
        An :class:`EvaluateResult`; ``result.metrics`` is the ``metrics.json`` payload.

    Raises:
        FileNotFoundError: no run directory or checkpoint.
        ValueError: unknown split.

    Example:
        >>> result = evaluate_run("runs/csg", baseline="runs/std")  # doctest: +SKIP
        >>> print(result.summary())  # doctest: +SKIP
    """
    from csg_interp.training.runs import check_same_data, load_run

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    device = str(resolve_device(device))  # "auto" -> cuda when available, else cpu
    if baseline is not None:
        check_same_data(run_dir, baseline, "baseline")  # before minutes of measuring
    cached = None if recompute else load_metrics(run_dir, split, max_samples, checkpoint)
    if cached is not None:
        payload = cached
    else:
        _say_if_replacing(run_dir, split, max_samples, checkpoint, recompute, write)
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
        ).metrics  # fmt: skip
        payload = dict(payload)
        payload["baseline"] = {k: base[k] for k in ("run_dir", "kind", *SCALARS) if k in base}
        payload["comparison"] = compare_metrics(payload, base)
    result = EvaluateResult(payload, Path(run_dir))
    if write:
        result.save(run_dir)
    return result
