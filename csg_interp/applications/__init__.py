"""Applications of a trained CSG model: adversarial-sample detection from gate statistics.

* :mod:`~csg_interp.applications.attacks` -- FGSM / PGD from ``captum.robust`` (L∞, pixel units).
* :mod:`~csg_interp.applications.detection` -- detector scores and ROC metrics.
* :mod:`~csg_interp.applications.evaluation` -- the paired clean/adversarial protocol.
* :mod:`~csg_interp.applications.pipeline` -- detection on run directories (``csg-interp detect``).
* :mod:`~csg_interp.applications.plots` -- ROC curves with scikit-learn's ``RocCurveDisplay``.

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
from .plots import plot_roc_curves

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
