"""Applications of a trained CSG model: adversarial-sample detection from gate statistics.

* :mod:`~csg_interp.applications.attacks` -- FGSM / PGD from ``captum.robust`` (L∞, pixel units).
* :mod:`~csg_interp.applications.detection` -- detector scores and ROC metrics.
* :mod:`~csg_interp.applications.evaluation` -- the paired clean/adversarial protocol.
* :mod:`~csg_interp.applications.pipeline` -- the detector scores of one model, fitted on
  held-out images (the run-directory workflow is :func:`csg_interp.workflows.detect_run`).
* ROC figures: :mod:`csg_interp.plotting.roc` (``plot_roc_curves`` is re-exported here).

See docs/detection.md.
"""

from .attacks import ATTACKS, LOSSES, AttackResult, attack, check_epsilon, margin_loss
from .detection import (
    GateConsistencyScore,
    LogisticGateScore,
    MahalanobisScore,
    MaxSoftmaxScore,
    ModelOutputs,
    detection_metrics,
    gate_outside_mass,
    model_outputs,
    tpr_at_fpr,
)
from .evaluation import DetectionEvaluation, evaluate_detection
from .pipeline import build_scores, detect_run


def __getattr__(name: str):
    # plot_roc_curves moved to csg_interp.plotting (the layer above): a lazy re-export.
    if name == "plot_roc_curves":
        from csg_interp.plotting import plot_roc_curves

        return plot_roc_curves
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ATTACKS",
    "LOSSES",
    "AttackResult",
    "DetectionEvaluation",
    "GateConsistencyScore",
    "LogisticGateScore",
    "MahalanobisScore",
    "MaxSoftmaxScore",
    "ModelOutputs",
    "attack",
    "build_scores",
    "check_epsilon",
    "detect_run",
    "detection_metrics",
    "evaluate_detection",
    "gate_outside_mass",
    "margin_loss",
    "model_outputs",
    "plot_roc_curves",
    "tpr_at_fpr",
]
