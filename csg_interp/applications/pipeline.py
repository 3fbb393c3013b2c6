"""Adversarial detection on trained run directories: what ``csg-interp detect`` and the demo run.

:func:`detect_run` loads a run (and optionally a baseline run, usually the STD twin), fits what the
scores need on the **validation** split, attacks a seeded subset of the **test** split, evaluates
every score with the paired protocol of :mod:`~csg_interp.applications.evaluation` and writes
``<run>/detect/metrics.json`` plus one ROC figure per ε (``roc_<attack>_eps<ε>.png``).

Scores per model:

* ``gate`` -- gate consistency with the model's learned gate (CSG models only);
* ``mi-gate`` -- gate consistency with ``gate_from_mi`` of the MI matrix on the validation split
  (every model; the "same detector" for an STD model);
* ``max-softmax`` and ``mahalanobis`` -- baselines (Mahalanobis statistics from validation images);
* optional (``logistic=True``): ``gate-logistic`` (CSG) / ``mi-gate-logistic`` (STD), a logistic
  regression on per-class filter statistics, refitted per ε on attacked validation images.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .attacks import DEFAULT_PGD_STEPS, DEFAULT_STEP_FACTOR, check_epsilon
from .detection import (
    DetectorScore,
    GateConsistencyScore,
    LogisticGateScore,
    MahalanobisScore,
    MaxSoftmaxScore,
    model_outputs,
)
from .evaluation import DetectionEvaluation, evaluate_detection

__all__ = ["build_scores", "build_supervised", "detect_run", "sample_indices", "SCORE_COLORS"]

#: One colour per score in every ROC panel (matplotlib's tab10).
SCORE_COLORS = {"gate": "tab:blue", "mi-gate": "tab:orange", "max-softmax": "tab:green",
                "mahalanobis": "tab:red", "gate-logistic": "tab:purple",
                "mi-gate-logistic": "tab:brown"}


def sample_indices(total: int, count: int | None, seed: int) -> np.ndarray:
    """A seeded, sorted subset of ``count`` indices out of ``total`` (all when ``count`` is None)."""
    if count is not None and count < 1:
        raise ValueError(f"the number of images must be positive, got {count}")
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(np.random.RandomState(seed).permutation(total)[:count])


def build_scores(
    net: torch.nn.Module,
    fit_images: torch.Tensor,
    fit_labels: torch.Tensor,
    *,
    batch_size: int = 256,
    mahalanobis: bool = True,
) -> list[DetectorScore]:
    """The detector scores of one model, fitted on clean held-out images (never the test split).

    Args:
        net: a :class:`~csg_interp.training.CSGNet`.
        fit_images: clean images of a split disjoint from the evaluation images (validation).
        fit_labels: their true labels.
        batch_size: forward batch size.
        mahalanobis: also fit the Mahalanobis baseline.

    Returns:
        ``[gate (CSG only), mi-gate, max-softmax, mahalanobis]``.
    """
    from csg_interp.metrics import mutual_information_matrix

    fitted = model_outputs(net, fit_images, batch_size)
    num_classes = fitted.logits.shape[1]
    scores: list[DetectorScore] = []
    if getattr(net, "gate", None) is not None:
        scores.append(GateConsistencyScore.from_net(net))
    # Serial: a few thousand samples take seconds, less than starting worker processes.
    mi = mutual_information_matrix(fitted.pooled.numpy(), fit_labels.numpy(), num_classes, n_jobs=1)
    scores.append(GateConsistencyScore.from_mi(mi))
    scores.append(MaxSoftmaxScore())
    if mahalanobis:
        scores.append(MahalanobisScore().fit(fitted, fit_labels))
    return scores


def build_supervised(scores: Sequence[DetectorScore]) -> list[LogisticGateScore]:
    """A :class:`LogisticGateScore` on the model's gate: the learned one (``gate-logistic``) when
    ``scores`` has a ``gate`` score, else the MI-derived one (``mi-gate-logistic``)."""
    by_name = {score.name: score for score in scores}
    for name in ("gate", "mi-gate"):
        if isinstance(by_name.get(name), GateConsistencyScore):
            return [LogisticGateScore(by_name[name].gate, name=f"{name}-logistic")]
    raise ValueError("no gate-consistency score to build the logistic detector from")


def _model_name(run: Any, taken: set[str]) -> str:
    name = "csg" if run.has_gate else "std"
    return name if name not in taken else f"{name}-baseline"


def _summary(evaluations: list[DetectionEvaluation], eps_values: list[float]) -> list[dict[str, Any]]:
    """Per ε: the CSG gate AUC against the STD MI-gate AUC and the CSG max-softmax AUC."""
    by_name = {evaluation.model: evaluation for evaluation in evaluations}
    csg, std = by_name.get("csg"), by_name.get("std")
    rows = []
    for eps in eps_values:
        row: dict[str, Any] = {"eps": eps}
        if csg is not None:
            row["csg_gate_auc"] = csg.metric(eps, "gate")
            row["csg_max_softmax_auc"] = csg.metric(eps, "max-softmax")
            row["csg_gate_tpr_at_fpr"] = csg.metric(eps, "gate", "tpr_at_fpr")
            if any(r["score"] == "gate-logistic" for r in csg.rows):
                row["csg_gate_logistic_auc"] = csg.metric(eps, "gate-logistic")
        if std is not None:
            row["std_mi_gate_auc"] = std.metric(eps, "mi-gate")
            row["std_max_softmax_auc"] = std.metric(eps, "max-softmax")
            if any(r["score"] == "mi-gate-logistic" for r in std.rows):
                row["std_mi_gate_logistic_auc"] = std.metric(eps, "mi-gate-logistic")
        gate = row.get("csg_gate_auc")
        if gate is not None and row.get("std_mi_gate_auc") is not None:
            row["gain_vs_std_points"] = 100.0 * (gate - row["std_mi_gate_auc"])
        if gate is not None and row.get("csg_max_softmax_auc") is not None:
            row["gain_vs_max_softmax_points"] = 100.0 * (gate - row["csg_max_softmax_auc"])
        rows.append(row)
    return rows


def _save_roc_figures(
    evaluations: list[DetectionEvaluation], eps_values: list[float], method: str, out: Path
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_roc_curves

    paths = []
    for eps in eps_values:
        panels = [e for e in evaluations if e.curves.get(eps)]
        if not panels:
            continue
        figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False)
        for ax, evaluation in zip(axes[0], panels):
            plot_roc_curves(evaluation.curves[eps], ax=ax, colors=SCORE_COLORS,
                            title=f"{evaluation.model.upper()} model, {method.upper()} ε={eps:g}")
        figure.tight_layout()
        path = out / f"roc_{method}_eps{eps:g}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path.name)
    return paths


def detect_run(
    run_dir: str | os.PathLike,
    baseline: str | os.PathLike | None = None,
    *,
    method: str = "pgd",
    eps: Sequence[float] = (0.03, 0.1),
    num_images: int | None = 1000,
    fit_images: int | None = 2000,
    steps: int = DEFAULT_PGD_STEPS,
    targeted: bool = False,
    loss: str = "ce",
    checkpoint: str = "last",
    device: str = "auto",
    batch_size: int = 256,
    seed: int = 0,
    max_fpr: float = 0.05,
    logistic: bool = False,
    logistic_images: int = 1000,
    data_root: str | None = None,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate adversarial detection on a run (and a baseline run) and write the results.

    Args:
        run_dir: a run directory (``csg-interp train``), usually the CSG model.
        baseline: another run directory to compare with, usually the STD twin (same data set).
        method: ``"pgd"`` or ``"fgsm"``.
        eps: L∞ radii in [0, 1] pixel units.
        num_images: test images to attack (a seeded subset; ``None`` = all).
        fit_images: validation images to fit the MI gate and Mahalanobis statistics on.
        steps: PGD steps (step size ``2.5·ε/steps``, random start).
        targeted: targeted attack towards a random other class.
        loss: attack loss, ``"ce"`` or ``"margin"``.
        checkpoint: ``"last"`` or ``"best"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        batch_size: images per batch.
        seed: seeds the subsets, the random start and the targets.
        max_fpr: FPR budget of the TPR column.
        logistic: also evaluate the supervised logistic detector on gate statistics, refitted per
            ε on successful attacks on the first ``logistic_images`` of the validation subset.
        logistic_images: validation images attacked to fit it.
        data_root: the data set's folder, when not where the run found it.
        out: output folder (default ``<run_dir>/detect``).

    Returns:
        The dictionary written to ``metrics.json``.

    Raises:
        ValueError: for ε outside [0, 1] or runs on different data sets.
        FileNotFoundError: for a missing run directory or checkpoint.
    """
    from csg_interp.metrics import resolve_device
    from csg_interp.training.runs import load_run

    eps_values = [check_epsilon(value) for value in eps]
    if not eps_values:
        raise ValueError("give at least one eps, e.g. --eps 0.03 0.1")
    target = resolve_device(device)
    runs = [load_run(run_dir, checkpoint=checkpoint, device=target)]
    if baseline is not None:
        runs.append(load_run(baseline, checkpoint=checkpoint, device=target))
        if runs[1].config.dataset != runs[0].config.dataset:
            raise ValueError(
                f"the baseline was trained on {runs[1].config.dataset!r} but the run on "
                f"{runs[0].config.dataset!r}; compare runs on the same data set"
            )
    overrides = {"data_root": data_root} if data_root else {}
    bundle = runs[0].load_data(**overrides)
    test_index = sample_indices(len(bundle.test), num_images, seed)
    fit_index = sample_indices(len(bundle.val), fit_images, seed + 1)
    test_images, test_labels = bundle.test.tensors(torch.as_tensor(test_index))
    fit_x, fit_y = bundle.val.tensors(torch.as_tensor(fit_index))

    evaluations, models, taken = [], {}, set()
    for run in runs:
        name = _model_name(run, taken)
        taken.add(name)
        scores = build_scores(run.net, fit_x, fit_y, batch_size=batch_size)
        supervised = build_supervised(scores) if logistic else []
        evaluation = evaluate_detection(
            run.net, scores, test_images, test_labels, eps_values, method=method,
            model_name=name, batch_size=batch_size, max_fpr=max_fpr, steps=steps,
            targeted=targeted, loss=loss, seed=seed, supervised=supervised,
            fit_images=fit_x[:logistic_images], fit_labels=fit_y[:logistic_images],
        )
        evaluations.append(evaluation)
        gate = getattr(run.net, "gate", None)
        models[name] = {
            "run_dir": str(run.run_dir),
            "has_gate": run.has_gate,
            "gate_density": float(gate.density().detach()) if gate is not None else None,
            "scores": [score.name for score in [*scores, *supervised]],
        }

    out_dir = Path(out) if out is not None else Path(run_dir) / "detect"
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _save_roc_figures(evaluations, eps_values, method, out_dir)
    result = {
        "protocol": {
            "dataset": runs[0].config.dataset,
            "attack": method,
            "eps": eps_values,
            "eps_units": "L∞ radius in [0, 1] pixel units",
            "steps": steps if method == "pgd" else 1,
            "step_size": f"{DEFAULT_STEP_FACTOR}·eps/steps" if method == "pgd" else "eps",
            "random_start": method == "pgd",
            "loss": loss,
            "targeted": targeted,
            "adaptive": False,
            "evaluation_split": "test",
            "num_images": int(len(test_index)),
            "fit_split": "val",
            "fit_images": int(len(fit_index)),
            "logistic_images": int(min(logistic_images, len(fit_index))) if logistic else 0,
            "pairing": "successful attacks on correctly classified images vs the same clean images",
            "max_fpr": max_fpr,
            "seed": seed,
            "checkpoint": checkpoint,
        },
        "models": models,
        "attacks": [row for evaluation in evaluations for row in evaluation.attacks],
        "rows": [row for evaluation in evaluations for row in evaluation.rows],
        "summary": _summary(evaluations, eps_values),
        "figures": figures,
    }
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
