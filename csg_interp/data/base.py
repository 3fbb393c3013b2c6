"""In-memory image datasets and the bundle of splits a run trains on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from csg_interp.errors import MissingInputError

__all__ = ["ArrayDataset", "DataBundle", "MissingDatasetError", "split_indices"]


class MissingDatasetError(MissingInputError):
    """A data set's files are not where they were looked for; the message says how to get them."""


class ArrayDataset(Dataset):
    """Images and labels held in memory as tensors.

    Images are stored as uint8 (N, C, H, W) or float (N, C, H, W) in [0, 1]; items are returned as
    float32 in [0, 1] with a long label.

    Args:
        images: uint8 or float tensor (N, C, H, W).
        labels: integer tensor (N,).
        classes: class names, index = label.
        extras: optional per-sample tensors (e.g. ``boxes``, ``masks``) of length N.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        classes: list[str],
        extras: dict[str, Tensor] | None = None,
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"need one label per image: {images.shape[0]} images, labels {tuple(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise ValueError(f"labels must lie in [0, {len(classes)}) for classes {classes}")
        self.images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.extras = dict(extras or {})
        for name, value in self.extras.items():
            if value.shape[0] != images.shape[0]:
                raise ValueError(f"extra {name!r} has {value.shape[0]} rows for {images.shape[0]} images")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.image_float(self.images[index]), self.labels[index]

    @staticmethod
    def image_float(images: Tensor) -> Tensor:
        """uint8 → float32 in [0, 1]; float input is returned as float32."""
        if images.dtype == torch.uint8:
            return images.float().div_(255.0)
        return images.float()

    def tensors(self, indices: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """All (or the selected) images as float32 in [0, 1] and their labels."""
        if indices is None:
            return self.image_float(self.images), self.labels
        return self.image_float(self.images[indices]), self.labels[indices]

    def subset(self, indices: Tensor | np.ndarray | list[int]) -> "ArrayDataset":
        """A new dataset holding only ``indices`` (extras follow)."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ArrayDataset(
            self.images[index],
            self.labels[index],
            self.classes,
            {k: v[index] for k, v in self.extras.items()},
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


@dataclass
class DataBundle:
    """The splits of a data set plus what a model needs to know about them.

    Attributes:
        name: data set name (``digits``, ``fashion-mnist``, ...).
        train, val, test: the splits.
        classes: class names.
        mean, std: per-channel statistics of the training images in [0, 1] units, for the
            model's :class:`~csg_interp.training.Normalize`.
        augment: the training augmentation the trainer should apply (``"flip_shift"``,
            ``"shift"`` or ``"none"``).
        info: free-form provenance (source folder, split seed, fallback notice).
    """

    name: str
    train: ArrayDataset
    val: ArrayDataset
    test: ArrayDataset
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.image_shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.train.image_shape[1], self.train.image_shape[2]


def split_indices(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split of ``range(n)`` into (keep, holdout) with a seeded permutation."""
    if not 0 < holdout < n:
        raise ValueError(f"holdout size must lie in (0, {n}), got {holdout}")
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8/float images in [0, 1] units."""
    x = ArrayDataset.image_float(images)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)
