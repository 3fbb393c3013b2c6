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

Used by experiments/sweep.py through :class:`LeakTrainer`, a subclass of the package's
:class:`~csg_interp.training.trainer.Trainer` that wraps the objective functions for one step.
With ``leak_weight = 0`` it is the plain trainer.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

from csg_interp.training import trainer as trainer_module
from csg_interp.training.trainer import Trainer

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


class LeakTrainer(Trainer):
    """:class:`Trainer` whose CSG/joint steps add ``leak_weight · leak_penalty``."""

    def __init__(self, config: Any, leak_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if leak_weight < 0:
            raise ValueError(f"leak_weight must be ≥ 0, got {leak_weight}")
        self.leak_weight = float(leak_weight)
        self.leak_sum = 0.0
        self.leak_steps = 0

    @contextlib.contextmanager
    def _leak_objectives(self, labels: Tensor):
        captured: dict[str, Tensor] = {}
        handle = self.net.features.register_forward_hook(
            lambda module, inputs, output: captured.__setitem__("map", output)
        )
        originals = {n: getattr(trainer_module, n) for n in ("csg_objective", "joint_objective")}

        def wrap(objective):
            def with_leak(*args: Any, **kwargs: Any):
                terms = objective(*args, **kwargs)
                activations = captured["map"]
                pooled = activations.mean(dim=(2, 3)) if activations.dim() == 4 else activations
                leak = leak_penalty(pooled, self.net.gate.weight, labels)
                self.leak_sum += float(leak.detach())
                self.leak_steps += 1
                terms.total = terms.total + self.leak_weight * leak
                return terms

            return with_leak

        try:
            for name, objective in originals.items():
                setattr(trainer_module, name, wrap(objective))
            yield
        finally:
            for name, objective in originals.items():
                setattr(trainer_module, name, objective)
            handle.remove()

    def train_step(self, kind: str, images: Tensor, labels: Tensor) -> dict[str, float]:
        if kind == "std" or self.leak_weight == 0.0:
            return super().train_step(kind, images, labels)
        with self._leak_objectives(labels):
            return super().train_step(kind, images, labels)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        self.leak_sum, self.leak_steps = 0.0, 0
        row = super().train_epoch(epoch)
        row["leak"] = self.leak_sum / self.leak_steps if self.leak_steps else None
        return row
