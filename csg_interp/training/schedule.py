"""Which kind of epoch runs when, and each optimiser's learning-rate factor per epoch.

An epoch is one of three kinds:

* ``std`` -- cross-entropy of the STD path; the STD optimiser steps.
* ``csg`` -- cross-entropy of the CSG path + λ·hinge; the CSG optimiser steps, then the gate is
  projected after every step (``docs/method.md`` §4).
* ``joint`` -- the paper's summed objective every step (``--schedule joint``).

Each optimiser's learning rate advances **only over its own epochs and steps**, as in the
reference code, whose two schedulers each step at the end of their own kind of epoch
(docs/method.md):

* ``multistep`` -- ``torch.optim.lr_scheduler.MultiStepLR`` stepped once per own epoch: after ``n``
  own epochs the factor is ``gamma ** (number of milestones ≤ n)``.
* ``onecycle`` -- ``torch.optim.lr_scheduler.OneCycleLR`` (cosine annealing, ``div_factor`` 25,
  ``final_div_factor`` 1e4, ``pct_start = lr_warmup``, momentum cycled over ``momentum ± 0.05``)
  stepped once per own step, over ``own epochs × steps_per_epoch`` steps.
* ``cosine`` -- a linear warm-up over the first ``round(lr_warmup · T)`` own steps, then cosine
  annealing to 0 over the rest (``T`` own steps).

In the alternating scheme the STD optimiser's steps are those of the STD epochs and the CSG
optimiser's those of the CSG epochs: the ``k``-th step of the CSG optimiser's third own epoch is
own step ``2 · steps_per_epoch + k`` whatever global epoch that is. Factors are computed from the
epoch and step index rather than kept in scheduler objects, so a resumed run cannot drift;
``tests/test_trainer_schedule.py`` checks them against the torch schedulers stepped the same way.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .config import TrainConfig

__all__ = ["EpochSchedule", "EPOCH_KINDS"]

EPOCH_KINDS: tuple[str, ...] = ("std", "csg", "joint")


@dataclass(frozen=True)
class EpochSchedule:
    """The epoch plan of a resolved :class:`TrainConfig`.

    Args:
        config: a resolved config (see :meth:`TrainConfig.resolved`).
        steps_per_epoch: optimiser steps in one epoch (per process); the per-step schedules
            (``onecycle``, ``cosine``) need it, ``multistep`` does not.

    Example:
        >>> config = TrainConfig(preset="reference", dataset="digits").resolved()
        >>> plan = EpochSchedule(config)
        >>> plan.kinds.count("csg"), plan.csg_epochs[:3]
        (47, [11, 14, 17])
    """

    config: TrainConfig
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        if not self.config.is_resolved:
            object.__setattr__(self, "config", self.config.resolved())
        if not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}")

    # ------------------------------------------------------------------ kinds
    def kind(self, epoch: int) -> str:
        """``std``, ``csg`` or ``joint`` for epoch index ``epoch`` (0-based)."""
        c = self.config
        if not 0 <= epoch < c.epochs:
            raise ValueError(f"epoch {epoch} is outside [0, {c.epochs})")
        if not c.gate or epoch < c.warmup:
            return "std"
        if c.schedule == "joint":
            return "joint"
        if c.align == "start":
            phase = epoch % c.period
        else:  # the last epoch has the last phase of its period
            phase = (c.period - 1 - (c.epochs - 1 - epoch)) % c.period
        return "csg" if phase >= c.csg_from else "std"

    @property
    def kinds(self) -> list[str]:
        return [self.kind(e) for e in range(self.config.epochs)]

    @property
    def csg_epochs(self) -> list[int]:
        """Epochs that train the gate (``csg`` or ``joint``)."""
        return [e for e, k in enumerate(self.kinds) if k != "std"]

    def check_has_csg(self) -> None:
        """Raise unless a gated run trains its gate at least once (or ``allow_no_csg``).

        Raises:
            ValueError: saying how to get a CSG epoch.
        """
        c = self.config
        if not c.gate or c.allow_no_csg or self.csg_epochs:
            return
        raise ValueError(
            f"this schedule has no CSG epoch in {c.epochs} epoch(s) (preset {c.preset}, warm-up "
            f"{c.warmup}, period {c.period}, CSG from phase {c.csg_from}, align {c.align}): the "
            "gate would never train and the run would be a plain STD run. Train more epochs, "
            "lower --warmup, use --preset scratch, or pass --allow-no-csg if that is what you want."
        )

    # ------------------------------------------------------------- optimisers
    @property
    def optimizer_names(self) -> list[str]:
        """The optimisers this run needs: ``std``; ``std`` + ``csg``; or ``joint``."""
        c = self.config
        if not c.gate:
            return ["std"]
        return ["joint"] if c.schedule == "joint" else ["std", "csg"]

    def optimizer_for(self, kind: str) -> str:
        """The optimiser stepped in an epoch of ``kind``."""
        if kind not in EPOCH_KINDS:
            raise ValueError(f"unknown epoch kind {kind!r}; one of {', '.join(EPOCH_KINDS)}")
        if self.config.gate and self.config.schedule == "joint":
            return "joint"
        return "csg" if kind == "csg" else "std"

    @property
    def milestone_steps(self) -> list[int]:
        """Milestones in own-epoch counts: ``round(f · (epochs − 1))`` (151 epochs → 60/90/120)."""
        last = self.config.epochs - 1
        return [int(f * last + 0.5) for f in self.config.milestones]

    def own_epochs_before(self, optimizer: str, epoch: int) -> int:
        """How many epochs before ``epoch`` stepped ``optimizer`` (its scheduler's step count)."""
        return sum(1 for e in range(epoch) if self.optimizer_for(self.kind(e)) == optimizer)

    def own_epochs_total(self, optimizer: str) -> int:
        """How many epochs of the whole run step ``optimizer``."""
        return self.own_epochs_before(optimizer, self.config.epochs)

    def own_step(self, optimizer: str, epoch: int, step: int = 0) -> int:
        """``optimizer``'s own step index at step ``step`` of global epoch ``epoch`` (an epoch of
        another optimiser leaves it where its last own epoch ended)."""
        if epoch >= self.config.epochs or self.optimizer_for(self.kind(epoch)) != optimizer:
            step = 0
        return self.own_epochs_before(optimizer, epoch) * self.steps_per_epoch + step

    def _cycle(self, optimizer: str, epoch: int, step: int) -> tuple[float, float]:
        """(learning-rate factor, momentum) of ``OneCycleLR``'s cosine shape at this own step."""
        c = self.config
        total = max(self.own_epochs_total(optimizer) * self.steps_per_epoch, 1)
        s = min(self.own_step(optimizer, epoch, step), total - 1)
        low, high = c.momentum - 0.05, c.momentum + 0.05
        initial, peak, final = 1.0 / 25.0, 1.0, 1.0 / 25.0 / 1e4
        warm_end = float(c.lr_warmup * total) - 1.0
        if s <= warm_end and warm_end > 0:
            pct = s / warm_end
            return _cos_anneal(initial, peak, pct), _cos_anneal(high, low, pct)
        start = warm_end if warm_end > 0 else 0.0
        pct = (s - start) / max(total - 1 - start, 1e-12)
        return _cos_anneal(peak, final, pct), _cos_anneal(low, high, pct)

    def lr_factor(self, optimizer: str, epoch: int, step: int = 0) -> float:
        """Multiplier of ``optimizer``'s base learning rates at step ``step`` of ``epoch``."""
        c = self.config
        if c.lr_schedule == "onecycle":
            return self._cycle(optimizer, epoch, step)[0]
        if c.lr_schedule == "cosine":
            total = max(self.own_epochs_total(optimizer) * self.steps_per_epoch, 1)
            s = min(self.own_step(optimizer, epoch, step), total - 1)
            warm = int(round(c.lr_warmup * total))
            if s < warm:
                return (s + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * (s - warm) / max(total - warm, 1)))
        passed = bisect.bisect_right(self.milestone_steps, self.own_epochs_before(optimizer, epoch))
        return c.gamma**passed

    def momentum(self, optimizer: str, epoch: int, step: int = 0) -> float:
        """SGD momentum / Adam β₁ of ``optimizer``'s backbone groups at this step (cycled by
        ``onecycle``, else ``config.momentum``)."""
        if self.config.lr_schedule == "onecycle":
            return self._cycle(optimizer, epoch, step)[1]
        return self.config.momentum

    def learning_rates(self, epoch: int, step: int = 0) -> dict[str, float | None]:
        """``{"std": ..., "csg": ..., "gate": ...}`` in effect at step ``step`` of ``epoch``
        (``None``: no such parameter group in this run)."""
        c = self.config
        names = self.optimizer_names
        rates: dict[str, float | None] = {"std": None, "csg": None, "gate": None}
        main = "joint" if "joint" in names else "std"
        rates["std"] = c.lr * self.lr_factor(main, epoch, step)
        if "csg" in names:
            rates["csg"] = c.csg_lr * self.lr_factor("csg", epoch, step)
        if c.gate:
            gate_owner = "joint" if "joint" in names else "csg"
            decay = self.lr_factor(gate_owner, epoch, step) if c.gate_decay else 1.0
            rates["gate"] = c.gate_lr * decay
        return rates

    def table(self) -> list[dict[str, object]]:
        """One row per epoch: ``epoch``, ``kind`` and the learning rates (for docs and tests)."""
        return [
            {"epoch": e, "kind": self.kind(e), **self.learning_rates(e)}
            for e in range(self.config.epochs)
        ]


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from ``start`` (pct 0) to ``end`` (pct 1), ``OneCycleLR``'s shape."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
