"""Extension (not in the paper): the owner-separation loss.

Why: MIS, the figure the paper's method is judged by, is ``mean_k max_c MI(f_k ; 1[y = c])``
over the pooled, **ungated** activations ``f_k`` of the gated layer. The paper's method reaches
the ungated network only through the CSG path's cross-entropy, and at full accuracy that loss is
nearly 0 after the first CSG epoch (the mask of the true class reveals the label;
docs/metrics.md), so it hardly asks any filter to fire on one class only. The counterfactual
term (``counterfactual.py``) attacked the shortcut through the head and cost accuracy. This term
asks the filters for the measured property directly, with no head in between.

Each filter ``k`` has an *owner*: the class whose gate row opens it most, ``c(k) = argmax_c
G[c, k]`` (the gate is detached: the owners follow the gate, the gate keeps the paper's updates).
On every CSG-path step, for the batch's pooled ungated activations, the term rewards a filter
whose mean on its owner's images lies above its mean on the other images, relative to the
spread of both groups:

    snr_k = relu(μ_in,k − μ_out,k)² / (σ²_in,k + σ²_out,k + ε)
    owner_separation = − mean_k ½·log(1 + snr_k)

over the filters whose owner has at least two images in the batch (and two outside it).
``½·log(1 + snr)`` is the capacity of a Gaussian channel with that signal-to-noise ratio: for two
Gaussian groups it grows with the MI between the activation and the owner indicator, which is
the entry ``M[c(k), k]`` of the MI matrix whose column maximum MIS averages. It is a surrogate,
not an estimate of that MI. The ``relu`` keeps the direction of the gate's semantics (a filter
the gate opens for c should fire *more* on c); a filter that fires less on its owner gets no
gradient from the term.

Used by experiments/full_accuracy.py (variants ``csg_own``, ``csg_own01``, ``csg_own003`` on the
alternating schedule, ``joint_own003``, ``joint_own01`` on the joint one) through
:class:`OwnerSeparationTrainer`. The term itself lives in the library since it won on the joint
objective (:func:`csg_interp.training.losses.owner_separation_loss`, ``TrainConfig.owner_separation``);
this trainer, which adds it through a hook, is what the campaign's runs were trained with, and a
test checks that it and the library's trainer take the same steps.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from csg_interp.training.gate import gate_assignment
from csg_interp.training.losses import owner_separation_loss
from extra_term import ExtraTermTrainer  # experiments/extra_term.py

__all__ = ["OwnerSeparationTrainer"]


class OwnerSeparationTrainer(ExtraTermTrainer):
    """Trainer whose CSG/joint steps add ``own_weight · owner_separation_loss``.

    Args:
        config: a :class:`~csg_interp.training.config.TrainConfig`.
        own_weight: the term's weight (0 gives the plain trainer).
        **kwargs: passed to the trainer.
    """

    term_name = "owner_separation"

    def __init__(self, config: Any, own_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(config, weight=own_weight, **kwargs)

    def extra_term(self, activations: Tensor, labels: Tensor) -> Tensor:
        owners = gate_assignment(self.net.gate.weight.detach())
        # GAP, as the features MIS is measured on (csg_interp.metrics.features).
        pooled = activations.float().mean(dim=(2, 3))
        return owner_separation_loss(pooled, labels, owners)


#: The trainer class experiments/full_accuracy.py uses for this extension.
TRAINER = OwnerSeparationTrainer
