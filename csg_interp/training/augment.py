"""Training augmentation on whole batches: random horizontal flip and random shift, vectorised.

Each sample gets its own random flip and its own shift, drawn from an explicit
``torch.Generator`` (so a run is reproducible and a resumed epoch replays the same draws), with
no Python loop over the batch. torchvision's ``transforms.v2`` draw one set of parameters per
call, i.e. per batch, which is why this small module exists.

The shift is the usual "pad by ``pad`` pixels with zeros, then crop a random window of the
original size" (the prototype's Fashion-MNIST setting: pad 2 on 28×28).
"""

from __future__ import annotations

import torch
from torch import Tensor
import torch.nn.functional as F

__all__ = ["augment_batch", "random_flip", "random_shift"]


def random_flip(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Flip each image of (N, C, H, W) left-right with probability 1/2.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 1, 4)
        >>> out = random_flip(x.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0))
        >>> sorted({tuple(row) for row in out[:, 0, 0].tolist()})
        [(0.0, 1.0, 2.0, 3.0), (3.0, 2.0, 1.0, 0.0)]
    """
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)


def random_shift(images: Tensor, pad: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by its own random offset in [−pad, pad]² (zero fill).

    Args:
        images: (N, C, H, W).
        pad: largest shift in pixels.
        generator: the random source.

    Returns:
        Tensor of the same shape.

    Example:
        >>> x = torch.ones(3, 1, 4, 4)
        >>> random_shift(x, pad=1, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1, 4, 4])
    """
    if pad < 0:
        raise ValueError(f"pad must be ≥ 0, got {pad}")
    if pad == 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(images.device)
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


def augment_batch(
    images: Tensor, mode: str, generator: torch.Generator | None = None, pad: int = 2
) -> Tensor:
    """Apply the named augmentation to a batch.

    Args:
        images: (N, C, H, W) floats in [0, 1].
        mode: ``none``, ``flip``, ``shift`` or ``flip_shift`` (flip, then shift).
        generator: the random source (CPU).
        pad: largest shift in pixels.

    Raises:
        ValueError: for an unknown mode.
    """
    if mode == "none":
        return images
    if mode not in ("flip", "shift", "flip_shift"):
        raise ValueError(f"unknown augmentation {mode!r}; use none, flip, shift or flip_shift")
    if mode in ("flip", "flip_shift"):
        images = random_flip(images, generator)
    if mode in ("shift", "flip_shift"):
        images = random_shift(images, pad, generator)
    return images
