"""Which kind of epoch runs when, and each optimiser's learning-rate factor per epoch.

An epoch is one of three kinds:

* ``std`` -- cross-entropy of the STD path; the STD optimiser steps.
* ``csg`` -- cross-entropy of the CSG path + λ·hinge; the CSG optimiser steps, then the gate is
  projected after every step (csg-method §4).
* ``joint`` -- the paper's summed objective every step (``--schedule joint``).

Learning rates follow ``torch.optim.lr_scheduler.MultiStepLR`` semantics with one scheduler per
optimiser that steps **only at the end of its own epochs** (csg-method §2): after ``n`` own epochs
the factor is ``gamma ** (number of milestones ≤ n)``. The factor is computed from the epoch index
rather than kept in a scheduler object, so a resumed run cannot drift;
``tests/test_trainer_schedule.py`` checks it against ``MultiStepLR`` stepped the same way.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .config import TrainConfig

__all__ = ["EpochSchedule", "EPOCH_KINDS"]

EPOCH_KINDS: tuple[str, ...] = ("std", "csg", "joint")


@dataclass(frozen=True)
class EpochSchedule:
    """The epoch plan of a resolved :class:`TrainConfig`.

    Args:
        config: a resolved config (see :meth:`TrainConfig.resolved`).

    Example:
        >>> config = TrainConfig(preset="reference", dataset="digits").resolved()
        >>> plan = EpochSchedule(config)
        >>> plan.kinds.count("csg"), plan.csg_epochs[:3]
        (47, [11, 14, 17])
    """

    config: TrainConfig

    def __post_init__(self) -> None:
        if not self.config.is_resolved:
            object.__setattr__(self, "config", self.config.resolved())

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

    def lr_factor(self, optimizer: str, epoch: int) -> float:
        """Multiplier of ``optimizer``'s base learning rates during ``epoch``."""
        passed = bisect.bisect_right(self.milestone_steps, self.own_epochs_before(optimizer, epoch))
        return self.config.gamma**passed

    def learning_rates(self, epoch: int) -> dict[str, float | None]:
        """``{"std": ..., "csg": ..., "gate": ...}`` in effect during ``epoch`` (``None``: no such
        parameter group in this run)."""
        c = self.config
        names = self.optimizer_names
        rates: dict[str, float | None] = {"std": None, "csg": None, "gate": None}
        main = "joint" if "joint" in names else "std"
        rates["std"] = c.lr * self.lr_factor(main, epoch)
        if "csg" in names:
            rates["csg"] = c.csg_lr * self.lr_factor("csg", epoch)
        if c.gate:
            gate_owner = "joint" if "joint" in names else "csg"
            decay = self.lr_factor(gate_owner, epoch) if c.gate_decay else 1.0
            rates["gate"] = c.gate_lr * decay
        return rates

    def table(self) -> list[dict[str, object]]:
        """One row per epoch: ``epoch``, ``kind`` and the learning rates (for docs and tests)."""
        return [
            {"epoch": e, "kind": self.kind(e), **self.learning_rates(e)}
            for e in range(self.config.epochs)
        ]
