"""A trainer whose CSG-path steps add one extra loss term (shared by the experiment extensions).

The extensions tried in experiments/ (the leak penalty of ``leak.py``, the counterfactual-gate
loss of ``counterfactual.py``) each add ``weight · term`` to every step that computes the CSG
path: the CSG epochs of the alternating schedule and every step of the joint one; STD epochs are
untouched. The term sees the **ungated** activations of the gated layer (captured by a forward
hook on ``net.features``), the network and the labels. With ``weight = 0`` the trainer is the
package's :class:`~csg_interp.training.trainer.Trainer`, step for step.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from torch import Tensor

from csg_interp.training import trainer as trainer_module
from csg_interp.training.trainer import Trainer

__all__ = ["ExtraTermTrainer"]

#: The objectives of the CSG path (the alternating scheme's and the joint one's).
CSG_OBJECTIVES = ("csg_objective", "joint_objective")


class ExtraTermTrainer(Trainer):
    """:class:`Trainer` whose CSG/joint steps add ``weight · self.extra_term(...)``.

    Subclasses set :attr:`term_name` (the key of the per-epoch mean in the history row) and
    implement :meth:`extra_term`.

    Args:
        config: a :class:`~csg_interp.training.config.TrainConfig`.
        weight: the term's weight (≥ 0; 0 gives the plain trainer).
        **kwargs: passed to :class:`Trainer`.
    """

    term_name = "extra"

    def __init__(self, config: Any, weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if weight < 0:
            raise ValueError(f"the {self.term_name} weight must be ≥ 0, got {weight}")
        self.weight = float(weight)
        self.term_sum = 0.0
        self.term_steps = 0

    def extra_term(self, activations: Tensor, labels: Tensor) -> Tensor:
        """The scalar term for one batch.

        Args:
            activations: the ungated output of ``net.features``, (N, K, h, w) for every
                model the package gates (a ViT's patch tokens arrive laid out on their grid,
                csg_interp.training.network).
            labels: (N,) classes.

        Returns:
            A scalar tensor (differentiable).
        """
        raise NotImplementedError

    @contextlib.contextmanager
    def _with_term(self, labels: Tensor) -> Iterator[None]:
        captured: dict[str, Tensor] = {}
        handle = self.net.features.register_forward_hook(
            lambda module, inputs, output: captured.__setitem__("map", output)
        )
        originals = {name: getattr(trainer_module, name) for name in CSG_OBJECTIVES}

        def wrap(objective: Callable[..., Any]) -> Callable[..., Any]:
            def with_term(*args: Any, **kwargs: Any) -> Any:
                terms = objective(*args, **kwargs)
                term = self.extra_term(captured["map"], labels)
                self.term_sum += float(term.detach())
                self.term_steps += 1
                terms.total = terms.total + self.weight * term
                return terms

            return with_term

        try:
            for name, objective in originals.items():
                setattr(trainer_module, name, wrap(objective))
            yield
        finally:
            for name, objective in originals.items():
                setattr(trainer_module, name, objective)
            handle.remove()

    def train_step(self, kind: str, images: Tensor, labels: Tensor) -> dict[str, float]:
        if kind == "std" or self.weight == 0.0:
            return super().train_step(kind, images, labels)
        with self._with_term(labels):
            return super().train_step(kind, images, labels)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        self.term_sum, self.term_steps = 0.0, 0
        row = super().train_epoch(epoch)
        row[self.term_name] = self.term_sum / self.term_steps if self.term_steps else None
        return row
