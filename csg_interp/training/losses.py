"""The three training objectives (``docs/method.md`` §2), built on the gate's own hinge.

* STD epoch: ``CE(std_logits, y)``.
* CSG epoch: ``CE(csg_logits, y) + λ · max(0, ‖G‖₁ − τ·C·K)`` (the reference code).
* joint (the paper's objective, a variant here): ``CE(std) + λ₁·CE(csg) + λ·hinge``.

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

__all__ = ["LossTerms", "std_objective", "csg_objective", "joint_objective"]


@dataclass
class LossTerms:
    """The loss to backpropagate and its parts (``None`` where a part is not used).

    Attributes:
        total: the scalar to call ``backward()`` on.
        ce_std: cross-entropy of the STD path.
        ce_csg: cross-entropy of the CSG path.
        hinge: ``λ · hinge`` as added to ``total``.
    """

    total: Tensor
    ce_std: Tensor | None = None
    ce_csg: Tensor | None = None
    hinge: Tensor | None = None


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
