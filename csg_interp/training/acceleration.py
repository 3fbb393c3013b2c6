"""Speed options for GPUs (and CPUs): mixed precision, channels-last memory, pinned batch loading.

* :class:`MixedPrecision` -- ``--amp bf16|fp16|none``: ``torch.autocast`` around the forward
  pass and the loss; fp16 adds a ``torch.amp.GradScaler`` (bf16 has fp32's exponent range and
  needs none). Parameters, the gate, the optimiser state and the projection stay float32; the
  losses are computed in float32 (autocast runs ``cross_entropy`` in float32).
* :func:`to_channels_last` -- ``--channels-last``: NHWC memory format for the network and its
  inputs (faster convolutions on tensor-core GPUs); values are unchanged.
* :class:`BatchLoader` -- ``--workers N`` / pinned memory: gathers each step's images from the
  in-memory split in ``N`` worker processes (``torch.utils.data.DataLoader`` over batches of
  indices) and pins them in page-locked memory on CUDA so the copy to the GPU overlaps compute
  (``non_blocking=True``). The batches are exactly the sampler's, in order: workers change speed,
  never results.

Sources: PyTorch's "Automatic Mixed Precision" recipe and ``torch.amp`` docs, the
"Channels Last Memory Format" tutorial, and ``torch.utils.data`` (``pin_memory``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["AMP_MODES", "MixedPrecision", "to_channels_last", "BatchLoader"]

AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast (+ gradient scaling for fp16) for one device.

    Args:
        mode: ``"none"``, ``"bf16"`` or ``"fp16"``.
        device: the training device (``cpu`` supports bf16; fp16 needs CUDA).

    Raises:
        ValueError: unknown mode, fp16 on CPU, or bf16 on a GPU without bf16 support.

    Example:
        >>> amp = MixedPrecision("bf16", "cpu")
        >>> with amp.autocast():
        ...     y = torch.nn.Linear(4, 2)(torch.rand(3, 4))
        >>> y.dtype
        torch.bfloat16
    """

    def __init__(self, mode: str = "none", device: str | torch.device = "cpu") -> None:
        if mode not in AMP_MODES:
            raise ValueError(f"unknown --amp {mode!r}; use one of {', '.join(AMP_MODES)}")
        self.mode = mode
        self.device = torch.device(device)
        if mode == "fp16" and self.device.type != "cuda":
            raise ValueError("--amp fp16 needs a CUDA device; on CPU use --amp bf16 (or none)")
        if mode == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU does not support bf16; use --amp fp16")
        self.scaler = torch.amp.GradScaler(self.device.type) if mode == "fp16" else None

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context to run the forward pass and the loss in."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.mode])

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, scaled under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, *optimizers: torch.optim.Optimizer) -> bool:
        """``optimizer.step()`` for each optimiser of one training step (under fp16: unscaled,
        skipped on inf/NaN gradients, and the scale updated once after all of them).

        Returns:
            Whether the step was taken (always ``True`` without fp16).
        """
        if self.scaler is None:
            for optimizer in optimizers:
                optimizer.step()
            return True
        scale = self.scaler.get_scale()
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= scale  # the scale drops only when a step is skipped

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convert a network's 4-D parameters and buffers to ``torch.channels_last`` in place.

    Feed it inputs converted with ``x.contiguous(memory_format=torch.channels_last)``; the values
    of the outputs are the same (up to float rounding).

    Example:
        >>> conv = to_channels_last(torch.nn.Conv2d(3, 8, 3))
        >>> conv.weight.is_contiguous(memory_format=torch.channels_last)
        True
    """
    return module.to(memory_format=torch.channels_last)


class _Batches(Dataset):
    """Item ``i`` is the whole ``i``-th batch: ``dataset.tensors(indices[i])``."""

    def __init__(self, dataset: Any, batches: Sequence[Tensor]) -> None:
        self.dataset, self.batches = dataset, list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.dataset.tensors(self.batches[i])


class BatchLoader:
    """Iterate ``(images, labels)`` for a list of index batches, with workers and pinned memory.

    Args:
        dataset: an :class:`~csg_interp.data.ArrayDataset` (anything with ``tensors(index)``).
        batches: one index tensor per step (the trainer's shuffled batches).
        workers: worker processes (0: gather in the main process).
        pin_memory: page-locked output for fast asynchronous copies to CUDA (ignored without
            CUDA).

    Example:
        >>> from csg_interp.data import load_dataset
        >>> train = load_dataset("digits").train
        >>> loader = BatchLoader(train, [torch.arange(4), torch.arange(4, 8)], workers=0)
        >>> [images.shape[0] for images, _ in loader]
        [4, 4]
    """

    def __init__(self, dataset: Any, batches: Sequence[Tensor], workers: int = 0,
                 pin_memory: bool = False) -> None:
        if workers < 0:
            raise ValueError(f"workers must be ≥ 0, got {workers}")
        self.pin_memory = bool(pin_memory and torch.cuda.is_available())
        self.loader = DataLoader(
            _Batches(dataset, batches), batch_size=None, shuffle=False, num_workers=workers,
            pin_memory=self.pin_memory, persistent_workers=False,
            prefetch_factor=2 if workers > 0 else None,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return iter(self.loader)
