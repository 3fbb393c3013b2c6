"""The detection protocol: attack, pair, score, measure.

For one model and each ε:

1. Classify the clean evaluation images; only correctly classified ones are attacked for real.
2. Attack them (:func:`~csg_interp.applications.attacks.attack`, non-adaptive).
3. Keep the **successful** attacks. Positives are those adversarial images, negatives the *same*
   images before the attack (paired, so both classes have equal size and the same content; the
   protocol of Ma et al., 2018, LID).
4. Score both with every detector score and compute ROC AUC and TPR at 5 % FPR
   (:func:`~csg_interp.applications.detection.detection_metrics`).

Supervised scores (e.g. the logistic detector on gate statistics) are refitted for each ε on
attacks on held-out images. By default that fitting attack is the evaluated attack. A different one
(``fit_method``, e.g. fit on FGSM and test on PGD) gives a cross-attack test of the detector.

Everything a score fits (an MI-derived gate, Mahalanobis statistics) must come from a split
disjoint from the evaluation images; :func:`evaluate_detection` does not fit anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor, nn

from csg_interp.errors import InvalidParameterError

from .attacks import ATTACKS, attack, check_epsilon
from .detection import DetectorScore, ModelOutputs, detection_metrics, model_outputs

__all__ = ["DetectionEvaluation", "evaluate_detection"]


@dataclass
class DetectionEvaluation:
    """Results of :func:`evaluate_detection` for one model.

    Attributes:
        model: the model's name in tables (e.g. ``"csg"``, ``"std"``).
        rows: one dict per (ε, score): ``model, attack, eps, score, auc, tpr_at_fpr, max_fpr,
            n_clean, n_adversarial``; the rows of supervised scores also hold ``fit_attack``
            (the attack on the images they were fitted on).
        attacks: one dict per ε: ``model, attack, eps, n_images, n_correct, n_success,
            success_rate, clean_accuracy``.
        fit_attacks: the attacks on the held-out images the supervised scores were fitted on,
            one dict per ε with the same keys as ``attacks`` (empty without supervised scores).
        curves: ``eps -> score name -> (y_true, y_score)`` for ROC plots (1 = adversarial).
    """

    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    attacks: list[dict[str, Any]] = field(default_factory=list)
    fit_attacks: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[float, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def metric(self, eps: float, score: str, key: str = "auc") -> float | None:
        """Look up one number, e.g. ``evaluation.metric(0.1, "gate")``."""
        for row in self.rows:
            if row["eps"] == eps and row["score"] == score:
                return row[key]
        raise KeyError(f"no row for eps={eps} score={score!r} in model {self.model!r}")


def evaluate_detection(
    net: nn.Module,
    scores: Sequence[DetectorScore],
    images: Tensor,
    labels: Tensor,
    eps_values: Sequence[float],
    *,
    method: str = "pgd",
    model_name: str = "model",
    batch_size: int = 256,
    max_fpr: float = 0.05,
    supervised: Sequence[Any] = (),
    fit_images: Tensor | None = None,
    fit_labels: Tensor | None = None,
    fit_method: str | None = None,
    **attack_options: Any,
) -> DetectionEvaluation:
    """Run the paired detection protocol (module docstring) for one model.

    Args:
        net: a :class:`~csg_interp.training.CSGNet` (``features``/``head``), images in [0, 1].
        scores: fitted detector scores (each has ``name`` and ``score(outputs)``).
        images: evaluation images (N, C, H, W) in [0, 1], disjoint from anything the scores were
            fitted on.
        labels: their true labels (N,).
        eps_values: L∞ radii in [0, 1] pixel units.
        method: ``"pgd"`` or ``"fgsm"``.
        model_name: the model's name in the rows.
        batch_size: images per forward/attack batch.
        max_fpr: FPR budget for the TPR column.
        supervised: detector scores fitted on attacks (``fit(clean, adversarial)``, e.g.
            :class:`~csg_interp.applications.detection.LogisticGateScore`); for every ε they are
            refitted on the successful attacks on ``fit_images`` (attack ``fit_method``, the
            same ε and ``attack_options``, seed + 1) against the same images clean, then
            evaluated like the others.
        fit_images: held-out images (disjoint from ``images``) for the supervised scores.
        fit_labels: their labels.
        fit_method: the attack on ``fit_images``, ``"pgd"`` or ``"fgsm"``; ``None`` (default)
            uses ``method``. A different one tests the supervised scores across attacks.
        **attack_options: passed to :func:`~csg_interp.applications.attacks.attack` (``steps``,
            ``targeted``, ``loss``, ``seed``, ...).

    Returns:
        A :class:`DetectionEvaluation`. A (ε, score) with no successful attack gets ``auc`` and
        ``tpr_at_fpr`` ``None``.

    Raises:
        ValueError: for ε outside [0, 1], no scores, duplicate score names, an unknown
            ``fit_method`` or a ``fit_method`` without supervised scores.
    """
    eps_values = [check_epsilon(eps) for eps in eps_values]
    names = [score.name for score in scores] + [score.name for score in supervised]
    if supervised and (fit_images is None or fit_labels is None):
        raise ValueError("supervised scores need held-out fit_images and fit_labels to attack")
    if fit_method is not None and fit_method not in ATTACKS:
        raise InvalidParameterError(
            f"unknown fit_method {fit_method!r}; use one of {', '.join(ATTACKS)} (or None for "
            "the evaluated attack)"
        )
    if fit_method is not None and not supervised:
        raise InvalidParameterError(
            "fit_method chooses the attack the supervised scores are fitted on, and none was "
            "given: pass supervised=[LogisticGateScore(...)] or leave fit_method None"
        )
    fit_method = method if fit_method is None else fit_method
    if not names:
        raise ValueError("no detector scores given; pass e.g. [GateConsistencyScore.from_net(net)]")
    if len(set(names)) != len(names):
        raise ValueError(f"detector score names must be unique, got {names}")
    clean = model_outputs(net, images, batch_size)
    fit_clean = model_outputs(net, fit_images, batch_size) if supervised else None
    evaluation = DetectionEvaluation(model=model_name)
    supervised_names = {score.name for score in supervised}
    for eps in eps_values:
        if supervised:
            fit_options = {**attack_options, "seed": int(attack_options.get("seed", 0)) + 1}
            fit_attack = attack(net, fit_images, fit_labels, method=fit_method, eps=eps,
                                batch_size=batch_size, **fit_options)
            fit_success = fit_attack.success
            evaluation.fit_attacks.append(
                _attack_row(model_name, fit_method, eps, fit_attack.correct, fit_success)
            )
            fit_adversarial = model_outputs(net, fit_attack.adversarial[fit_success], batch_size) \
                if int(fit_success.sum()) else ModelOutputs(clean.pooled[:0], clean.logits[:0])
            unfitted = set()
            for score in supervised:
                if int(fit_success.sum()):
                    score.fit(fit_clean.subset(fit_success), fit_adversarial)
                else:  # nothing to fit on at this ε: the score gets an empty row
                    unfitted.add(score.name)
        else:
            unfitted = set()
        result = attack(net, images, labels, method=method, eps=eps, batch_size=batch_size,
                        **attack_options)
        success = result.success
        n_success = int(success.sum())
        evaluation.attacks.append(_attack_row(model_name, method, eps, result.correct, success))
        evaluation.curves[eps] = {}
        negatives = clean.subset(success)
        positives = (
            model_outputs(net, result.adversarial[success], batch_size)
            if n_success else ModelOutputs(clean.pooled[:0], clean.logits[:0])
        )
        for score in [*scores, *supervised]:
            row: dict[str, Any] = {"model": model_name, "attack": method, "eps": eps,
                                   "score": score.name}
            if score.name in supervised_names:
                row["fit_attack"] = fit_method
            if n_success == 0 or score.name in unfitted:
                row.update(auc=None, tpr_at_fpr=None, max_fpr=max_fpr, n_clean=0, n_adversarial=0)
            else:
                clean_scores = score.score(negatives)
                adversarial_scores = score.score(positives)
                row.update(detection_metrics(clean_scores, adversarial_scores, max_fpr))
                y_true = np.concatenate([np.zeros(len(clean_scores)), np.ones(len(adversarial_scores))])
                evaluation.curves[eps][score.name] = (
                    y_true, np.concatenate([clean_scores, adversarial_scores])
                )
            evaluation.rows.append(row)
    return evaluation


def _attack_row(
    model_name: str, method: str, eps: float, correct: Tensor, success: Tensor
) -> dict[str, Any]:
    """The counts of one attack at one ε (a row of ``attacks`` / ``fit_attacks``).

    Args:
        model_name: the model's name in the rows.
        method: the attack, ``"pgd"`` or ``"fgsm"``.
        eps: its L∞ radius.
        correct: boolean mask (N,) of the images classified correctly before the attack.
        success: boolean mask (N,) of the successful attacks (a subset of ``correct``).

    Returns:
        ``model, attack, eps, n_images, n_correct, n_success, success_rate, clean_accuracy``.
    """
    n_images, n_correct, n_success = int(correct.shape[0]), int(correct.sum()), int(success.sum())
    return {
        "model": model_name, "attack": method, "eps": eps, "n_images": n_images,
        "n_correct": n_correct, "n_success": n_success,
        "success_rate": n_success / n_correct if n_correct else 0.0,
        "clean_accuracy": n_correct / max(n_images, 1),
    }
