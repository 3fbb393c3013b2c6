"""The trainer: alternating (or joint) CSG training, logs, atomic checkpoints, exact resume.

``fit(config)`` is the one-call API; :class:`Trainer` is the composable object behind it. A
distributed wrapper (``training/distributed.py``) subclasses :class:`Trainer` and overrides its
hooks:

* ``rank`` / ``world_size`` constructor arguments and :attr:`Trainer.is_writer` (only rank 0
  writes files or shows progress bars);
* ``sampler=``: any object with ``set_epoch(epoch)`` that iterates over training indices (the
  default is :class:`torch.utils.data.DistributedSampler` with one replica, so a DDP run only
  changes ``num_replicas`` and ``rank``);
* :meth:`Trainer.wrap_model` (e.g. return ``DistributedDataParallel(net)``);
* :meth:`Trainer.reduce_sums` (all-reduce of the per-epoch sums) and :meth:`Trainer.barrier`.

Freezing uses optimiser parameter groups: each path's optimiser holds exactly the parameters it
trains; parameters that no path trains get ``requires_grad=False`` once, at construction, and
never change afterwards. BatchNorm stays in train mode everywhere (``docs/method.md`` §1).

This module holds the training loop; the trainer calls free functions for the rest: the
optimisers and their per-step rates (:mod:`~csg_interp.training.optim`), the run directory's
files (:mod:`~csg_interp.training.run_files`) and the provenance in the manifest
(:mod:`~csg_interp.training.provenance`). The loss functions are looked up in this module's
namespace at every step, so a subclass may swap ``csg_objective`` / ``joint_objective`` here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DistributedSampler

from csg_interp._utils import eval_mode, resolve_device
from csg_interp.errors import TrainingInterrupted

from .acceleration import BatchLoader, MixedPrecision, to_channels_last
from .augment import augment_batch
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from .config import TrainConfig
from .interrupt import InterruptGuard
from .data import load_bundle
from .gate import gate_assignment
from .losses import (
    LossTerms,
    csg_objective,
    joint_objective,
    owner_separation_loss,
    std_objective,
)
from .optim import build_optimizers, optimizers_of, set_learning_rates
from .run_files import (
    append_metrics,
    build_manifest,
    check_run_directory,
    save_epoch_checkpoints,
    write_config,
    write_manifest,
    write_metrics,
)
from .runs import Run, build_net, load_run, net_meta
from .schedule import EpochSchedule

__all__ = [
    "Trainer",
    "TrainingDivergedError",
    "fit",
    "load_bundle",
    "evaluate_accuracy",
    "resolve_device",
    "seed_for",
]

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint is kept."""


# ------------------------------------------------------------------ helpers
def seed_for(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed derived from ``seed`` and ``keys`` (e.g. epoch, rank)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint64)[0] >> 1)


@contextlib.contextmanager
def _captured_output(module: nn.Module, enabled: bool = True) -> Iterator[dict[str, Tensor]]:
    """Within the block, ``captured["output"]`` is ``module``'s latest output (a forward hook,
    removed on exit, also after an error); nothing is hooked when ``enabled`` is false."""
    captured: dict[str, Tensor] = {}
    if not enabled:
        yield captured
        return
    handle = module.register_forward_hook(
        lambda _module, _inputs, output: captured.__setitem__("output", output)
    )
    try:
        yield captured
    finally:
        handle.remove()


@torch.no_grad()
def evaluate_accuracy(
    net: nn.Module, dataset: Any, device: torch.device | str = "cpu", batch_size: int = 512
) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy of the STD path ``net(x)`` on an ``ArrayDataset``.

    The network is put in eval mode for the pass and its previous mode is restored.

    Returns:
        ``{"acc": ..., "loss": ..., "n": ...}``.
    """
    correct, loss_sum, total = 0, 0.0, len(dataset)
    with eval_mode(net):
        for start in range(0, total, batch_size):
            images, labels = dataset.tensors(torch.arange(start, min(start + batch_size, total)))
            images, labels = images.to(device), labels.to(device)
            logits = net(images)
            loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
    return {"acc": correct / max(total, 1), "loss": loss_sum / max(total, 1), "n": total}


# ------------------------------------------------------------------ trainer
class Trainer:
    """Train one CSG network (or its STD twin) into a run directory.

    Args:
        config: the run's :class:`TrainConfig` (resolved here if needed); ``config.out`` is the
            run directory.
        bundle: the data (default: :func:`load_bundle` of the config).
        rank: this process's rank (only rank 0 writes files and shows progress).
        world_size: number of processes.
        device: overrides ``config.device``.
        sampler: yields the training indices of an epoch and has ``set_epoch(epoch)``; default
            ``DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True,
            seed=config.seed)``.
        progress: show a tqdm bar per epoch.

    Raises:
        ValueError: bad config, no run directory, or a schedule without CSG epoch.

    Example:
        >>> trainer = Trainer(TrainConfig(dataset="digits", model="smallcnn", epochs=3,
        ...                               out="runs/tiny"))  # doctest: +SKIP
        >>> run = trainer.fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        bundle: Any = None,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device | None = None,
        sampler: Any = None,
        progress: bool = True,
    ) -> None:
        self.config = config if config.is_resolved else config.resolved()
        if not self.config.out:
            raise ValueError("config.out is required: the run directory to write (e.g. runs/NAME)")
        EpochSchedule(self.config).check_has_csg()  # fail before loading any data
        self.rank, self.world_size = int(rank), int(world_size)
        self.device = resolve_device(device if device is not None else self.config.device)
        self.progress = progress
        self.run_dir = Path(self.config.out)
        self.bundle = bundle if bundle is not None else load_bundle(self.config)
        self.meta = net_meta(self.bundle)
        self.augment = self.config.augment or self.bundle.augment
        if self.device.type == "cuda":
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        torch.manual_seed(self.config.seed)
        self.net = build_net(self.config, self.meta).to(self.device)
        self.amp = MixedPrecision(self.config.amp, self.device)
        if self.config.channels_last:
            to_channels_last(self.net)
        self.sampler = sampler if sampler is not None else self.make_sampler()
        self.schedule = EpochSchedule(self.config, steps_per_epoch=self._steps_per_epoch())
        self.optimizers = self._build_optimizers()
        self.model = self.wrap_model(self.net)
        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "val_acc": None}

    # ------------------------------------------------------------ hooks (DDP)
    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run directory (rank 0)."""
        return self.rank == 0

    def wrap_model(self, net: nn.Module) -> nn.Module:
        """The module called in training steps (override to return e.g. a DDP wrapper)."""
        return net

    def make_sampler(self) -> Any:
        """The default sampler: a seeded shuffle per epoch, one shard per rank."""
        return DistributedSampler(
            self.bundle.train, num_replicas=self.world_size, rank=self.rank, shuffle=True,
            seed=self.config.seed, drop_last=False,
        )  # fmt: skip

    def reduce_sums(self, sums: Tensor) -> Tensor:
        """Sum per-epoch statistics over processes (identity in one process)."""
        return sums

    def barrier(self) -> None:
        """Wait for every process (no-op in one process)."""

    def _steps_per_epoch(self) -> int:
        """Optimiser steps per epoch in this process (batches of ≥ 2 samples)."""
        n, size = len(self.sampler), self.config.batch_size
        return max(n // size + (1 if n % size >= 2 else 0), 1)

    # ------------------------------------------------------------- optimisers
    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per path (:func:`~csg_interp.training.optim.build_optimizers`)."""
        return build_optimizers(self.config, self.net, self.schedule.optimizer_names)

    def _set_learning_rates(self, epoch: int, step: int = 0) -> dict[str, float | None]:
        """Set the rates (and momenta) of one step (:func:`~.optim.set_learning_rates`)."""
        return set_learning_rates(self.optimizers, self.schedule, self.config, epoch, step)

    def _optimizers_of(self, kind: str) -> list[torch.optim.Optimizer]:
        """The optimisers stepped by one step of an epoch of ``kind``."""
        return optimizers_of(self.optimizers, self.schedule, kind)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain containers only."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epochs_done": self.epochs_done,
            "model": self.net.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "amp": self.amp.state_dict(),
            "rng": capture_rng_state(),
            "best": dict(self.best),
            "history": [dict(row) for row in self.history],
            "config": self.config.to_dict(),
            "meta": dict(self.meta),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (from ``last.pt``)."""
        self.net.load_state_dict(state["model"])
        missing = set(self.optimizers) - set(state["optimizers"])
        if missing:
            raise ValueError(
                f"the checkpoint has no state for optimiser(s) {', '.join(sorted(missing))}"
            )
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.amp.load_state_dict(state.get("amp", {}))
        restore_rng_state(state["rng"])
        self.epochs_done = int(state["epochs_done"])
        self.best = dict(state["best"])
        self.history = [dict(row) for row in state["history"]]

    # ---------------------------------------------------------------- steps
    def train_step(self, kind: str, images: Tensor, labels: Tensor) -> dict[str, float]:
        """One optimiser step of an epoch of ``kind``; returns the batch's loss parts.

        Raises:
            TrainingDivergedError: if the loss is NaN or infinite (no step is taken).
        """
        c = self.config
        self.net.zero_grad(set_to_none=True)
        csg_logits = None
        with self.amp.autocast():  # --amp: forward and losses (losses stay float32)
            if kind == "std":
                std_logits = self.model(images)
                terms: LossTerms = std_objective(std_logits, labels, c.label_smoothing)
            else:
                with _captured_output(self.net.features, c.owner_separation > 0) as captured:
                    std_logits, csg_logits = self.model(images, labels)
                gate = self.net.gate.weight
                if kind == "csg":
                    terms = csg_objective(
                        csg_logits, labels, gate, c.lam, c.tau, c.label_smoothing
                    )
                    with torch.no_grad():
                        terms.ce_std = nn.functional.cross_entropy(
                            std_logits, labels, label_smoothing=c.label_smoothing
                        )
                else:
                    terms = joint_objective(
                        std_logits, csg_logits, labels, gate, c.lam, c.tau, c.csg_weight,
                        c.label_smoothing,
                    )
                if c.owner_separation > 0:
                    # The ungated map, pooled as the MI score's features are (GAP, float32).
                    pooled = captured["output"].float().mean(dim=(2, 3))
                    term = owner_separation_loss(pooled, labels, gate_assignment(gate.detach()))
                    terms.owner_separation = c.owner_separation * term
                    terms.total = terms.total + terms.owner_separation
        loss = float(terms.total.detach())
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"the {kind} loss is {loss}")
        self.amp.backward(terms.total)
        self.amp.step(*self._optimizers_of(kind))
        resets = self.net.gate.project_() if kind != "std" else 0
        with torch.no_grad():
            result = {
                "loss": loss,
                "ce_std": float(terms.ce_std) if terms.ce_std is not None else 0.0,
                "ce_csg": float(terms.ce_csg) if terms.ce_csg is not None else 0.0,
                "hinge": float(terms.hinge) if terms.hinge is not None else 0.0,
                "correct_std": float((std_logits.argmax(1) == labels).sum()),
                "correct_csg": (
                    float((csg_logits.argmax(1) == labels).sum()) if csg_logits is not None else 0.0
                ),
                "resets": float(resets),
            }  # fmt: skip
            if c.owner_separation > 0:
                result["owner_separation"] = (
                    float(terms.owner_separation) if terms.owner_separation is not None else 0.0
                )
        return result

    def _batches(self, epoch: int) -> list[Tensor]:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        batches = []
        for batch in BatchSampler(self.sampler, self.config.batch_size, drop_last=False):
            if len(batch) >= 2:  # BatchNorm cannot train on a single sample
                batches.append(torch.as_tensor(batch, dtype=torch.long))
        return batches

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch; returns its metrics row (without validation)."""
        from tqdm.auto import tqdm

        kind = self.schedule.kind(epoch)
        rates = self._set_learning_rates(epoch)
        self.net.train()
        generator = torch.Generator().manual_seed(seed_for(self.config.seed, epoch, self.rank))
        train = self.bundle.train
        batches = self._batches(epoch)
        keys = ("loss", "ce_std", "ce_csg", "hinge", "correct_std", "correct_csg", "resets")
        if self.config.owner_separation > 0:
            keys += ("owner_separation",)
        sums = dict.fromkeys(keys, 0.0)
        seen = 0
        start = time.perf_counter()
        bar = tqdm(
            total=len(batches), desc=f"epoch {epoch + 1}/{self.config.epochs} {kind:>5}",
            unit="step", leave=True, dynamic_ncols=True,
            disable=not (self.progress and self.is_writer),
        )  # fmt: skip
        # --workers / pinned memory: the same batches, gathered ahead; augmentation is exact
        # (flips and integer shifts), so doing it on the device gives the CPU's result.
        loader = BatchLoader(train, batches, self.config.workers, pin_memory=self.device.type == "cuda")
        try:
            for step, (images, labels) in enumerate(loader):
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                images = augment_batch(images, self.augment, generator)
                if self.config.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                if step:  # step 0's rates were set before the epoch
                    self._set_learning_rates(epoch, step)
                try:
                    parts = self.train_step(kind, images, labels)
                except TrainingDivergedError as error:
                    raise TrainingDivergedError(
                        f"{error} at epoch {epoch} step {step}; training stopped. "
                        + self._last_good_message()
                        + " Lower the learning rates (--lr/--csg-lr/--gate-lr) and resume or"
                        " retrain."
                    ) from None
                n = int(labels.shape[0])
                for key in keys:
                    weight = 1 if key.startswith("correct") or key == "resets" else n
                    sums[key] += parts[key] * weight
                seen += n
                correct = sums["correct_csg" if kind == "csg" else "correct_std"]
                bar.set_postfix(
                    loss=f"{sums['loss'] / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False
                )
                bar.update(1)
        finally:
            bar.close()
        totals = self.reduce_sums(
            torch.tensor([sums[k] for k in keys] + [seen], dtype=torch.float64)
        )
        values = dict(zip(keys, totals[:-1].tolist()))
        count = max(float(totals[-1]), 1.0)
        has_csg = kind != "std"
        row = {
            "epoch": epoch,
            "kind": kind,
            "steps": len(batches),
            "loss": values["loss"] / count,
            "ce_std": values["ce_std"] / count,
            "ce_csg": values["ce_csg"] / count if has_csg else None,
            "hinge": values["hinge"] / count if has_csg else None,
            "train_acc_std": values["correct_std"] / count,
            "train_acc_csg": values["correct_csg"] / count if has_csg else None,
            "gate_resets": int(values["resets"]),
            "lr_std": rates["std"],
            "lr_csg": rates["csg"],
            "lr_gate": rates["gate"],
            "train_time_s": round(time.perf_counter() - start, 3),
        }
        if "owner_separation" in values:  # only in runs that use the term
            row["owner_separation"] = values["owner_separation"] / count if has_csg else None
        return row

    def _last_good_message(self) -> str:
        if self.epochs_done:
            return (
                f"The last good checkpoint, {self.run_dir / 'last.pt'} (epoch {self.epochs_done}), "
                "is kept."
            )
        return "No epoch had finished, so there is no checkpoint."

    # ------------------------------------------------------------ run files
    def _prepare(self, resume: bool) -> None:
        """Check the run directory, load ``last.pt`` on resume, then (rank 0) write its files."""
        check_run_directory(self.run_dir, self.config, resume)
        last = self.run_dir / "last.pt"
        if resume and last.exists():
            state = load_checkpoint(last, map_location="cpu")
            self.load_state_dict(state)
            logger.info("resuming %s after epoch %d of %d",
                        self.run_dir, self.epochs_done, self.config.epochs)
        elif resume:
            logger.info("nothing to resume in %s; starting from epoch 0", self.run_dir)
        if self.is_writer:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_config(self.run_dir, self.config)
            self._write_metrics()
            self._write_manifest(status="running")

    def _write_metrics(self) -> None:
        write_metrics(self.run_dir, self.history)

    def _append_metrics(self, row: dict[str, Any]) -> None:
        append_metrics(self.run_dir, row)

    def _write_manifest(self, status: str, result: dict[str, Any] | None = None) -> None:
        manifest = build_manifest(
            status=status, epochs_done=self.epochs_done, config=self.config, meta=self.meta,
            augment=self.augment, bundle=self.bundle, device=self.device,
            world_size=self.world_size, net=self.net, schedule=self.schedule, best=self.best,
            result=result,
        )  # fmt: skip
        write_manifest(self.run_dir, manifest)

    def _save_epoch(self, improved: bool) -> None:
        save_epoch_checkpoints(self.run_dir, self.state_dict(), improved)

    # ------------------------------------------------------------------ fit
    def fit(self, resume: bool = False) -> Run:
        """Train the remaining epochs and return the run (``last`` checkpoint, CPU, eval mode).

        Args:
            resume: continue the run in ``config.out`` from its ``last.pt`` (exactly: same
                weights, optimiser moments, RNG states, shuffles and augmentation draws as an
                uninterrupted run).

        Raises:
            TrainingDivergedError: the loss became NaN/inf (``last.pt`` of the last good epoch
                is kept).
            ValueError: the run directory holds another run, or the config changed on resume.
            TrainingInterrupted: SIGINT/SIGTERM arrived; the last completed epoch is saved,
                ``manifest.json`` says ``interrupted`` with its ``epochs_done``, and the
                exception's ``resume_command`` continues the run exactly.
        """
        self._prepare(resume)
        guard = InterruptGuard()  # SIGINT/SIGTERM: keep the last completed epoch, then stop
        try:
            with guard:
                self._fit_epochs(guard)
        except TrainingInterrupted as stop:
            guard.stop_listening()
            if self.is_writer:
                self._write_manifest(status="interrupted")
            interrupted = TrainingInterrupted(stop.signum, self.run_dir, self.epochs_done)
            interrupted.resume_command = self.resume_command()
            raise interrupted from None
        self.barrier()
        return load_run(self.run_dir, "last")

    def resume_command(self) -> str:
        """The command line that continues this run exactly (``--resume`` reads its config)."""
        import shlex

        command = f"csg-interp train --out {shlex.quote(str(self.run_dir))} --resume"
        if self.world_size > 1:
            command = (f"torchrun --nproc_per_node={self.world_size} -m csg_interp train "
                       f"--out {shlex.quote(str(self.run_dir))} --resume")  # fmt: skip
        return command

    def _fit_epochs(self, guard: InterruptGuard) -> None:
        """The epoch loop of :meth:`fit`; each epoch's bookkeeping is shielded from signals."""
        for epoch in range(self.epochs_done, self.config.epochs):
            try:
                row = self.train_epoch(epoch)
            except TrainingDivergedError:
                if self.is_writer:
                    self._write_manifest(status="diverged")
                raise
            val = evaluate_accuracy(self.net, self.bundle.val, self.device)
            row.update(
                val_acc=val["acc"],
                val_loss=val["loss"],
                gate_density=(
                    float(self.net.gate.density().detach()) if self.net.gate is not None else None
                ),
            )
            with guard.deferred():  # the epoch is recorded whole or not at all
                improved = self.best["val_acc"] is None or val["acc"] > self.best["val_acc"]
                if improved:
                    self.best = {"epoch": epoch, "val_acc": val["acc"]}
                self.history.append(row)
                self.epochs_done = epoch + 1
                if self.is_writer:
                    self._append_metrics(row)
                    self._save_epoch(improved)
                    self._write_manifest(status="running")  # epochs_done as saved
            logger.info(
                "epoch %d/%d %s: loss %.4f, val acc %.4f%s", epoch + 1, self.config.epochs,
                row["kind"], row["loss"], val["acc"],
                "" if row["gate_density"] is None else f", gate density {row['gate_density']:.3f}",
            )  # fmt: skip
            self.barrier()
        if self.is_writer:
            test = evaluate_accuracy(self.net, self.bundle.test, self.device)
            last = self.history[-1] if self.history else {}
            result = {
                "test_acc": test["acc"],
                "test_loss": test["loss"],
                "val_acc": last.get("val_acc"),
                "gate_density": last.get("gate_density"),
                "epochs_done": self.epochs_done,
                "checkpoint": "last",
            }
            with guard.deferred():
                self._write_manifest(status="finished", result=result)


def fit(
    config: TrainConfig,
    *,
    bundle: Any = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> Run:
    """Train a CSG network (or its STD twin, ``config.gate=False``) into ``config.out``.

    Args:
        config: the :class:`TrainConfig`.
        bundle: the data (default: loaded from the config).
        resume: continue the run in ``config.out`` exactly where it stopped.
        progress: show a tqdm bar per epoch.
        device: overrides ``config.device``.

    Returns:
        The :class:`Run` (``last`` checkpoint, eval mode, CPU).

    Example:
        >>> run = fit(TrainConfig(dataset="digits", model="smallcnn", epochs=3,
        ...                       out="runs/digits-csg"))  # doctest: +SKIP
        >>> run.history[-1]["gate_density"]  # doctest: +SKIP
    """
    return Trainer(config, bundle=bundle, device=device, progress=progress).fit(resume=resume)
