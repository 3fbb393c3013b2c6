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

Used by experiments/full_accuracy.py (variants ``csg_own``, ``csg_own01``, ``csg_own003``) through
:class:`OwnerSeparationTrainer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from extra_term import ExtraTermTrainer  # experiments/extra_term.py

__all__ = ["owner_classes", "owner_separation_loss", "OwnerSeparationTrainer"]


def owner_classes(gate: Tensor) -> Tensor:
    """The owner of each filter: the class whose gate row is largest there.

    Args:
        gate: (C, K) gate matrix.

    Returns:
        (K,) class indices (ties go to the lowest class, as ``argmax``).

    Example:
        >>> owner_classes(torch.tensor([[1.0, 0.0, 0.2], [0.0, 1.0, 0.5]])).tolist()
        [0, 1, 1]
    """
    return gate.argmax(dim=0)


def owner_separation_loss(pooled: Tensor, labels: Tensor, owners: Tensor,
                          eps: float = 1e-4) -> Tensor:  # fmt: skip
    """``− mean_k ½·log(1 + relu(μ_in − μ_out)² / (σ²_in + σ²_out + eps))`` over a batch.

    Args:
        pooled: (N, K) pooled activations.
        labels: (N,) classes.
        owners: (K,) the owner class of each filter.
        eps: added to the summed variances (activations of a BatchNorm network are O(1)).

    Returns:
        A scalar ≤ 0; 0 when no filter's owner has two images in and two out of the batch.
        Unbiased (n − 1) variances.

    Example:
        >>> pooled = torch.tensor([[3.0], [1.0], [0.0], [2.0]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> round(float(owner_separation_loss(pooled, labels, torch.tensor([0]), eps=0.0)), 4)
        -0.1116
    """
    inside = labels[:, None] == owners[None, :].to(labels.device)  # (N, K)
    weights_in = inside.to(pooled.dtype)
    weights_out = 1.0 - weights_in
    n_in, n_out = weights_in.sum(0), weights_out.sum(0)
    valid = (n_in >= 2) & (n_out >= 2)
    if not bool(valid.any()):
        return pooled.sum() * 0.0
    mean_in = (pooled * weights_in).sum(0) / n_in.clamp(min=1)
    mean_out = (pooled * weights_out).sum(0) / n_out.clamp(min=1)
    var_in = ((pooled - mean_in) ** 2 * weights_in).sum(0) / (n_in - 1).clamp(min=1)
    var_out = ((pooled - mean_out) ** 2 * weights_out).sum(0) / (n_out - 1).clamp(min=1)
    snr = torch.relu(mean_in - mean_out) ** 2 / (var_in + var_out + eps)
    return -(0.5 * torch.log1p(snr))[valid].mean()


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
        owners = owner_classes(self.net.gate.weight.detach())
        # GAP, as the features MIS is measured on (csg_interp.metrics.features).
        pooled = activations.float().mean(dim=(2, 3))
        return owner_separation_loss(pooled, labels, owners)


#: The trainer class experiments/full_accuracy.py uses for this extension.
TRAINER = OwnerSeparationTrainer
