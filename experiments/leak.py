"""Extension (not in the paper): a penalty on activation that leaks into closed-gate filters.

Why: once the gate is sparse, the CSG-path loss collapses (the gate row ``G[y]`` leaks the label,
as an earlier Fashion-MNIST prototype found), so the gated path stops shaping the *ungated*
network that MIS measures.
This term acts on the ungated pooled activations ``f(x)`` directly:

    leak(x, y) = Σ_k (1 − G[y, k]) · f_k(x) / (Σ_k f_k(x) + ε)

the share of the sample's activation mass in filters its class's gate row closes. The gate is
detached (the term trains the backbone only; the gate keeps its own CE + hinge updates). It is
added with weight ``leak_weight`` to every step that computes the CSG path (CSG epochs of the
alternating schedule, every step of the joint one).

Used by experiments/sweep.py through :class:`LeakTrainer`, an
:class:`~extra_term.ExtraTermTrainer` (experiments/extra_term.py: the package's trainer plus one
term on its CSG-path steps). With ``leak_weight = 0`` it is the plain trainer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from extra_term import ExtraTermTrainer  # experiments/extra_term.py

__all__ = ["leak_penalty", "LeakTrainer"]


def leak_penalty(pooled: Tensor, gate: Tensor, labels: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean over the batch of the activation share in filters closed for the sample's class.

    Args:
        pooled: (N, K) non-negative pooled activations of the gated layer (ungated).
        gate: (C, K) gate; detached here.
        labels: (N,) classes.

    Example:
        >>> leak_penalty(torch.tensor([[1.0, 3.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
        tensor(0.7500)
    """
    closed = 1.0 - gate.detach()[labels]
    return ((closed * pooled).sum(dim=1) / (pooled.sum(dim=1) + eps)).mean()


class LeakTrainer(ExtraTermTrainer):
    """:class:`~extra_term.ExtraTermTrainer` whose CSG/joint steps add
    ``leak_weight · leak_penalty``."""

    term_name = "leak"

    def __init__(self, config: Any, leak_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(config, weight=leak_weight, **kwargs)

    @property
    def leak_weight(self) -> float:
        return self.weight

    def extra_term(self, activations: Tensor, labels: Tensor) -> Tensor:
        pooled = activations.mean(dim=(2, 3)) if activations.dim() == 4 else activations
        return leak_penalty(pooled, self.net.gate.weight, labels)
