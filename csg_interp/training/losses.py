"""The three training objectives (``docs/method.md`` §2), built on the gate's own hinge.

* STD epoch: ``CE(std_logits, y)``.
* CSG epoch: ``CE(csg_logits, y) + λ · max(0, ‖G‖₁ − τ·C·K)`` (the reference code).
* joint (the paper's objective, a variant here): ``CE(std) + λ₁·CE(csg) + λ·hinge``.
* owner separation (an extension of this library, off by default): ``w · owner_separation``
  added to every CSG-path step of either schedule (:func:`owner_separation_loss`).

The hinge itself is :func:`csg_interp.training.sparsity_hinge`; nothing is redefined here. Every
cross-entropy takes ``label_smoothing`` (``torch.nn.functional.cross_entropy``'s ε; 0, the
default, is the plain cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .gate import sparsity_hinge

__all__ = [
    "LossTerms",
    "std_objective",
    "csg_objective",
    "joint_objective",
    "owner_separation_loss",
]


@dataclass
class LossTerms:
    """The loss to backpropagate and its parts (``None`` where a part is not used).

    Attributes:
        total: the scalar to call ``backward()`` on.
        ce_std: cross-entropy of the STD path.
        ce_csg: cross-entropy of the CSG path.
        hinge: ``λ · hinge`` as added to ``total``.
        owner_separation: ``w · owner_separation_loss`` as added to ``total`` (``None`` when the
            term is off).
    """

    total: Tensor
    ce_std: Tensor | None = None
    ce_csg: Tensor | None = None
    hinge: Tensor | None = None
    owner_separation: Tensor | None = None


def std_objective(std_logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> LossTerms:
    """STD-epoch loss ``CE(std_logits, y)``.

    Example:
        >>> std_objective(torch.zeros(2, 4), torch.tensor([0, 3])).total
        tensor(1.3863)
    """
    ce = F.cross_entropy(std_logits, labels, label_smoothing=label_smoothing)
    return LossTerms(total=ce, ce_std=ce)


def csg_objective(
    csg_logits: Tensor,
    labels: Tensor,
    gate: Tensor,
    lam: float,
    tau: float,
    label_smoothing: float = 0.0,
) -> LossTerms:
    """CSG-epoch loss ``CE(csg_logits, y) + lam · max(0, ‖G‖₁ − tau·C·K)``.

    Args:
        csg_logits: logits of the gated path (N, C).
        labels: (N,) class indices.
        gate: the C×K gate matrix (``net.gate.weight``).
        lam: λ.
        tau: τ, the density bound.
        label_smoothing: ε of the cross-entropy.

    Example:
        >>> logits, labels, gate = torch.zeros(2, 2), torch.tensor([0, 1]), torch.ones(2, 3)
        >>> terms = csg_objective(logits, labels, gate, lam=0.5, tau=0.5)
        >>> round(float(terms.hinge), 4), round(float(terms.total), 4)
        (1.5, 2.1931)
    """
    ce = F.cross_entropy(csg_logits, labels, label_smoothing=label_smoothing)
    hinge = lam * sparsity_hinge(gate, tau)
    return LossTerms(total=ce + hinge, ce_csg=ce, hinge=hinge)


def joint_objective(
    std_logits: Tensor,
    csg_logits: Tensor,
    labels: Tensor,
    gate: Tensor,
    lam: float,
    tau: float,
    csg_weight: float = 1.0,
    label_smoothing: float = 0.0,
) -> LossTerms:
    """The paper's joint objective ``CE(std) + csg_weight·CE(csg) + lam·hinge`` (one step).

    Example:
        >>> t = joint_objective(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([1]),
        ...                     torch.zeros(2, 2), lam=1.0, tau=0.0, csg_weight=2.0)
        >>> round(float(t.total), 4)  # 3 · ln 2
        2.0794
    """
    ce_std = F.cross_entropy(std_logits, labels, label_smoothing=label_smoothing)
    ce_csg = F.cross_entropy(csg_logits, labels, label_smoothing=label_smoothing)
    hinge = lam * sparsity_hinge(gate, tau)
    total = ce_std + csg_weight * ce_csg + hinge
    return LossTerms(total=total, ce_std=ce_std, ce_csg=ce_csg, hinge=hinge)


def owner_separation_loss(
    pooled: Tensor, labels: Tensor, owners: Tensor, eps: float = 1e-4
) -> Tensor:
    """The owner-separation term: ``− mean_k ½·log(1 + snr_k)`` over a batch.

    Each filter ``k`` has an *owner* class ``c(k)`` (the class whose gate row opens it most,
    :func:`~csg_interp.training.gate.gate_assignment`); with ``μ``/``σ²`` the mean and unbiased
    variance of the pooled activation on the batch's images of class ``c(k)`` (*in*) and on the
    others (*out*),

        snr_k = relu(μ_in,k − μ_out,k)² / (σ²_in,k + σ²_out,k + eps)

    ``½·log(1 + snr)`` is the capacity of a Gaussian channel at that signal-to-noise ratio, a
    surrogate (not an estimate) of ``MI(f_k ; 1[y = c(k)])``, the entry of the MI matrix whose
    column maximum the MI score averages. Minimising the term asks each filter to fire more on
    its owner's images than on the others, which the gated cross-entropy does not ask once the
    gate's mask alone reveals the label (docs/metrics.md). The ``relu`` keeps the gate's
    direction: a filter that fires *less* on its owner gets no gradient. Only filters whose
    owner has at least two images in the batch and two outside it count.

    Args:
        pooled: (N, K) pooled (global-average) activations of the gated layer, **ungated**.
        labels: (N,) class indices.
        owners: (K,) the owner class of each filter.
        eps: added to the summed variances (activations of a BatchNorm network are O(1)).

    Returns:
        A scalar ≤ 0; an exact 0 (still attached to ``pooled``'s graph) when no filter counts.

    Example:
        >>> pooled = torch.tensor([[3.0], [1.0], [0.0], [2.0]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> # in: mean 2, var 2; out: mean 1, var 2; snr = 1/4; −½·log(1.25)
        >>> round(float(owner_separation_loss(pooled, labels, torch.tensor([0]), eps=0.0)), 4)
        -0.1116
    """
    if pooled.dim() != 2 or labels.shape != pooled.shape[:1] or owners.shape != pooled.shape[1:]:
        raise ValueError(
            f"owner_separation_loss takes pooled (N, K), labels (N,) and owners (K,); got "
            f"{tuple(pooled.shape)}, {tuple(labels.shape)} and {tuple(owners.shape)}"
        )
    inside = labels[:, None] == owners[None, :].to(labels.device)  # (N, K)
    weights_in = inside.to(pooled.dtype)
    weights_out = 1.0 - weights_in
    n_in, n_out = weights_in.sum(0), weights_out.sum(0)
    counted = (n_in >= 2) & (n_out >= 2)
    if not bool(counted.any()):
        return pooled.sum() * 0.0
    mean_in = (pooled * weights_in).sum(0) / n_in.clamp(min=1)
    mean_out = (pooled * weights_out).sum(0) / n_out.clamp(min=1)
    var_in = ((pooled - mean_in) ** 2 * weights_in).sum(0) / (n_in - 1).clamp(min=1)
    var_out = ((pooled - mean_out) ** 2 * weights_out).sum(0) / (n_out - 1).clamp(min=1)
    snr = torch.relu(mean_in - mean_out) ** 2 / (var_in + var_out + eps)
    return -(0.5 * torch.log1p(snr))[counted].mean()
