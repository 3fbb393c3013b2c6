"""``detect``: adversarial-sample detection from gate statistics on a run directory.

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
  regression on per-class filter statistics, refitted per ε on attacked validation images
  (attacked with the evaluated attack, or with ``fit_attack`` for a cross-attack test).

The protocol and its caveats are in ``docs/detection.md`` (the paper's own protocol is not
available, ``docs/method.md`` §6b).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from csg_interp._utils import resolve_device, write_json_atomic
from csg_interp.applications.attacks import (
    ATTACKS,
    DEFAULT_PGD_STEPS,
    DEFAULT_STEP_FACTOR,
    check_epsilon,
)
from csg_interp.applications.evaluation import DetectionEvaluation, evaluate_detection
from csg_interp.applications.pipeline import build_scores, build_supervised, sample_indices
from csg_interp.errors import InvalidParameterError, check_output_parent, check_positive_int
from csg_interp.plotting.roc import save_roc_figures

from ._result import RunResult

__all__ = ["DetectResult", "detect_run", "format_rows"]


def format_rows(result: dict[str, Any]) -> str:
    """A small plain-text table of the metrics rows (one line per model, ε and score)."""
    lines = [f"{'model':<14}{'eps':>7}  {'score':<18}{'AUC':>7}{'TPR@5%':>9}{'n':>7}"]
    for row in result["rows"]:
        auc = "-" if row["auc"] is None else f"{row['auc']:.3f}"
        tpr = "-" if row["tpr_at_fpr"] is None else f"{row['tpr_at_fpr']:.3f}"
        lines.append(f"{row['model']:<14}{row['eps']:>7g}  {row['score']:<18}{auc:>7}{tpr:>9}"
                     f"{row['n_adversarial']:>7}")
    return "\n".join(lines)


@dataclass
class DetectResult(RunResult):
    """Detection scores of a run (and its baseline) against one attack at several ε.

    Attributes:
        metrics: ``protocol`` (``attack`` on the test images, ``fit_attack`` on the validation
            images the supervised detector is fitted on, ``None`` without one), ``models``,
            ``attacks`` (success counts), ``fit_attacks`` (success counts of the fitting attacks,
            empty without a supervised detector), ``rows`` (AUC and TPR at the FPR budget per
            model, ε and score), ``summary`` (per ε) and ``figures``.
        out_dir: the folder that holds ``metrics.json`` and the ROC figures.
    """

    FILENAME = "detect/metrics.json"

    metrics: dict[str, Any]
    out_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return self.metrics

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> DetectResult:
        return cls(payload, path.parent)

    def save_to(self, folder: str | os.PathLike) -> Path:
        """Write ``metrics.json`` atomically into ``folder`` (``save`` uses RUN_DIR/detect)."""
        return write_json_atomic(Path(folder) / "metrics.json", self.metrics, indent=2)

    def summary(self) -> str:
        result = self.metrics
        lines = [format_rows(result)]
        for attack in result["attacks"]:
            lines.append(f"{attack['model']}: {attack['attack']} ε={attack['eps']:g} fooled "
                         f"{attack['n_success']}/{attack['n_correct']} correctly classified images")
        protocol = result["protocol"]
        if protocol.get("fit_attack") is not None:
            cross = " (cross-attack)" if protocol["fit_attack"] != protocol["attack"] else ""
            lines.append(f"supervised detectors fitted on {protocol['fit_attack']} attacks on "
                         f"validation images, tested on {protocol['attack']}{cross}")
        for attack in result.get("fit_attacks", []):
            lines.append(f"{attack['model']}: fitting {attack['attack']} ε={attack['eps']:g} "
                         f"fooled {attack['n_success']}/{attack['n_correct']} correctly "
                         "classified validation images")
        figures = ", ".join(result["figures"]) or "no figures"
        lines.append(f"wrote {self.out_dir / 'metrics.json'} and {figures}")
        return "\n".join(lines)


def _model_name(run: Any, taken: set[str]) -> str:
    name = "csg" if run.has_gate else "std"
    return name if name not in taken else f"{name}-baseline"


def _summary(
    evaluations: list[DetectionEvaluation], eps_values: list[float]
) -> list[dict[str, Any]]:
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
    fit_attack: str | None = None,
    data_root: str | None = None,
    out: str | os.PathLike | None = None,
) -> DetectResult:
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
        fit_attack: the attack on those validation images, ``"pgd"`` or ``"fgsm"`` (same ε,
            ``steps``, ``targeted`` and ``loss``); ``None`` (default) uses ``method``. A different
            one is a cross-attack test (e.g. fit on FGSM, test on PGD). Needs ``logistic``.
        data_root: the data set's folder, when not where the run found it.
        out: output folder (default ``<run_dir>/detect``).

    Returns:
        A :class:`DetectResult`; ``metrics`` is what ``metrics.json`` holds.

    Raises:
        ValueError: for ε outside [0, 1], runs on different data sets, an unknown
            ``fit_attack`` or ``fit_attack`` without ``logistic``.
        FileNotFoundError: for a missing run directory or checkpoint.
    """
    from csg_interp.training.runs import load_run

    eps_values = [check_epsilon(value) for value in eps]
    if not eps_values:
        raise InvalidParameterError("give at least one radius, e.g. `eps=0.03`")
    if any(value == 0.0 for value in eps_values):
        raise InvalidParameterError(
            f"`eps` {eps_values} holds 0: an attack of radius 0 leaves every image unchanged, so "
            "there is nothing to detect; give radii in (0, 1], e.g. `eps=0.03`"
        )
    if fit_attack is not None and not logistic:
        raise InvalidParameterError(
            "`fit_attack` chooses the attack the supervised logistic detector is fitted on, and "
            "there is none: add `logistic=True`, or leave `fit_attack` unset"
        )
    if fit_attack is not None and fit_attack not in ATTACKS:
        raise InvalidParameterError(
            f"unknown `fit_attack` {fit_attack!r}; use one of {', '.join(ATTACKS)}, e.g. "
            "`fit_attack=fgsm`"
        )
    fit_method = (fit_attack or method) if logistic else None
    for name, value in (("num_images", num_images), ("fit_images", fit_images),
                        ("batch_size", batch_size), ("steps", steps)):  # fmt: skip
        check_positive_int(value, name)
    if out is not None:
        check_output_parent(out, "out")
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
            fit_method=fit_method,
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
    figures = save_roc_figures(evaluations, eps_values, method, out_dir)
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
            "fit_attack": fit_method,
            "fit_steps": None if fit_method is None else steps if fit_method == "pgd" else 1,
            "pairing": "successful attacks on correctly classified images vs the same clean images",
            "max_fpr": max_fpr,
            "seed": seed,
            "checkpoint": checkpoint,
        },
        "models": models,
        "attacks": [row for evaluation in evaluations for row in evaluation.attacks],
        "fit_attacks": [row for evaluation in evaluations for row in evaluation.fit_attacks],
        "rows": [row for evaluation in evaluations for row in evaluation.rows],
        "summary": _summary(evaluations, eps_values),
        "figures": figures,
    }
    outcome = DetectResult(result, out_dir)
    outcome.save_to(out_dir)
    return outcome
