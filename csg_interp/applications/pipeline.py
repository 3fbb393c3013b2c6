"""What adversarial detection builds for one model: its detector scores, fitted on held-out images.

:func:`build_scores` fits the unsupervised scores (gate consistency with the learned gate and
with ``gate_from_mi``, max-softmax, Mahalanobis) and :func:`build_supervised` the logistic
detector on gate statistics. The run-directory workflow that attacks a run's test images and
scores them, ``csg-interp detect``, is :func:`csg_interp.workflows.detect_run`; :func:`detect_run`
here is a compatibility re-export that returns its ``metrics.json`` payload.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .detection import (
    DetectorScore,
    GateConsistencyScore,
    LogisticGateScore,
    MahalanobisScore,
    MaxSoftmaxScore,
    model_outputs,
)

__all__ = ["build_scores", "build_supervised", "detect_run", "sample_indices", "SCORE_COLORS"]


def __getattr__(name: str) -> Any:
    # SCORE_COLORS moved to csg_interp.plotting.colors (the layer above): a lazy re-export.
    if name == "SCORE_COLORS":
        from csg_interp.plotting.colors import SCORE_COLORS

        return SCORE_COLORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def detect_run(run_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`csg_interp.workflows.detect_run`, returning the ``metrics.json`` payload (dict).

    Kept so existing imports work; new code should call the workflow, which returns a
    :class:`~csg_interp.workflows.DetectResult`.
    """
    from csg_interp.workflows.detect import detect_run as workflow

    return workflow(run_dir, *args, **kwargs).metrics
