"""Data-parallel training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel (DDP).

``torchrun --nproc_per_node=N -m csg_interp train ...`` starts N processes; each one calls
:func:`init_distributed` (reading ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT`` from the environment torchrun sets) and trains with a
:class:`DistributedTrainer`, the ordinary :class:`~csg_interp.training.Trainer` with its DDP hooks
filled in:

* every rank draws its own shard of each epoch's shuffle (``DistributedSampler``, padded so every
  rank takes the same number of steps);
* the model is wrapped in ``DistributedDataParallel``. The gate is a parameter **of the model**,
  so its gradient is all-reduced (averaged) with the others; every rank then takes the same Adam
  step from the same state and applies the same deterministic projection, so the gate stays
  identical on every rank (``tests/test_distributed.py`` checks this bit for bit);
  ``find_unused_parameters=True`` because STD steps do not use the gate;
* plain BatchNorm: each rank normalises with its own shard's batch statistics (SyncBatchNorm does
  not run on CPU under gloo). DDP broadcasts rank 0's running statistics at every forward, and
  :class:`DistributedTrainer` broadcasts them once more at the end of each epoch so every rank
  validates the same network;
* only rank 0 writes ``config.json``, ``metrics.jsonl``, ``manifest.json`` and the checkpoints and
  shows progress bars; the per-epoch loss/accuracy sums are all-reduced so the log covers every
  rank's samples;
* ``--resume`` works as in one process: every rank reads ``last.pt`` after rank 0 has checked the
  run directory.

Backend: ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per process, ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .config import TrainConfig
from .runs import Run
from .trainer import Trainer

__all__ = [
    "DistContext",
    "DistributedTrainer",
    "choose_backend",
    "fit_distributed",
    "init_distributed",
    "is_torchrun",
]


_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a distributed run.

    Attributes:
        rank: global rank (0 writes the run directory).
        world_size: number of processes.
        local_rank: rank on this machine (the GPU index on CUDA).
        backend: ``gloo`` or ``nccl``.
        device: this process's device.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


def is_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether this process was started by torchrun with more than one process."""
    environ = os.environ if environ is None else environ
    return all(key in environ for key in ("RANK", "WORLD_SIZE")) and int(environ["WORLD_SIZE"]) > 1


def choose_backend(device: str) -> tuple[str, str]:
    """``(backend, device_type)`` for a ``--device`` value: nccl on CUDA, gloo on CPU.

    Raises:
        ValueError: ``cuda`` requested without a GPU.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda under torchrun, but CUDA is not available; use --device cpu")
        return "nccl", "cuda"
    if kind != "cpu":
        raise ValueError(f"distributed training supports cpu (gloo) and cuda (nccl), got {device!r}")
    return "gloo", "cpu"


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the process group torchrun set up (``env://``); idempotent.

    Args:
        device: ``auto`` | ``cpu`` | ``cuda``: picks the backend (nccl for CUDA, gloo for CPU).
        timeout_s: collective timeout.

    Returns:
        The :class:`DistContext` of this process.

    Raises:
        ValueError: outside torchrun (the environment variables are missing), or more local
            processes than GPUs.
    """
    missing = [key for key in _ENV if key not in os.environ]
    if missing:
        raise ValueError(
            f"not started by torchrun ({', '.join(missing)} unset); launch with "
            "torchrun --nproc_per_node=N -m csg_interp train ..."
        )
    backend, kind = choose_backend(device)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {local_rank} needs GPU {local_rank}, but only "
                f"{torch.cuda.device_count()} are visible; use --nproc_per_node ≤ the GPU count"
            )
        torch.cuda.set_device(local_rank)
        this_device = torch.device("cuda", local_rank)
    else:
        this_device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend, rank=rank, world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )  # fmt: skip
    return DistContext(rank, world_size, local_rank, backend, this_device)


class DistributedTrainer(Trainer):
    """:class:`~csg_interp.training.Trainer` inside an initialised process group (DDP).

    Args:
        config: the run's config (identical on every rank).
        context: this process's :class:`DistContext` (default: from ``torch.distributed``).
        **kwargs: passed to :class:`~csg_interp.training.Trainer` (``bundle``, ``progress``).

    Example:
        >>> context = init_distributed("cpu")  # doctest: +SKIP  (inside torchrun)
        >>> run = DistributedTrainer(config, context=context).fit()  # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, *, context: DistContext | None = None, **kwargs: Any) -> None:
        if not dist.is_initialized():
            raise ValueError(
                "DistributedTrainer needs an initialised process group; call init_distributed() "
                "inside torchrun (or use Trainer for one process)"
            )
        if context is None:
            context = DistContext(dist.get_rank(), dist.get_world_size(), dist.get_rank(),
                                  dist.get_backend(), torch.device(kwargs.pop("device", "cpu")))
        self.context = context
        kwargs.setdefault("device", context.device)
        super().__init__(config, rank=context.rank, world_size=context.world_size, **kwargs)

    # ---------------------------------------------------------------- hooks
    def wrap_model(self, net: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=True)

    def reduce_sums(self, sums: Tensor) -> Tensor:
        work = sums.to(self.device)
        dist.all_reduce(work, op=dist.ReduceOp.SUM)
        return work.cpu()

    def barrier(self) -> None:
        dist.barrier()

    # ------------------------------------------------------------- epochs
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        row = super().train_epoch(epoch)
        self.broadcast_buffers()
        return row

    @torch.no_grad()
    def broadcast_buffers(self) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
        for buffer in self.net.buffers():
            dist.broadcast(buffer, src=0)

    def _prepare(self, resume: bool) -> None:
        # Rank 0 checks and writes the run directory first; the others then read what it wrote
        # (a rank that looked before rank 0 wrote could not tell a new run from an old one).
        failure: list[Any] = [None]
        if self.is_writer:
            try:
                super()._prepare(resume)
            except (ValueError, FileNotFoundError, RuntimeError) as error:
                failure = [f"{type(error).__name__}: {error}"]
                dist.broadcast_object_list(failure, src=0)
                raise
            dist.broadcast_object_list(failure, src=0)
        else:
            dist.broadcast_object_list(failure, src=0)
            if failure[0] is not None:
                raise RuntimeError(f"rank 0 could not prepare the run: {failure[0]}")
            super()._prepare(resume=True)  # reads config.json / last.pt written by rank 0


def fit_distributed(
    config: TrainConfig, *, resume: bool = False, progress: bool = True, bundle: Any = None
) -> Run:
    """Train under torchrun: join the process group, train with DDP, leave the group.

    Every rank returns the run that rank 0 wrote.

    Raises:
        ValueError: outside torchrun, or bad options (see :func:`init_distributed`).
    """
    context = init_distributed(config.device)
    try:
        if context.rank != 0:
            logging.getLogger("csg_interp").setLevel(logging.WARNING)
        trainer = DistributedTrainer(config, context=context, bundle=bundle, progress=progress)
        return trainer.fit(resume=resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
