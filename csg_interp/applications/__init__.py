"""Applications of a trained CSG model: adversarial-sample detection from gate statistics.

* :mod:`~csg_interp.applications.attacks` -- FGSM / PGD from ``captum.robust`` (L∞, pixel units).
* :mod:`~csg_interp.applications.detection` -- detector scores, ROC metrics, the evaluation protocol.
"""

from .attacks import ATTACKS, LOSSES, AttackResult, attack, check_epsilon, margin_loss

__all__ = ["ATTACKS", "LOSSES", "AttackResult", "attack", "check_epsilon", "margin_loss"]
