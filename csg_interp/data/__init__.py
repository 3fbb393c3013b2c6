"""Data sets: in-memory splits of images in [0, 1] with their class names and statistics.

``load_dataset(name, ...)`` is the one entry point the CLI and the trainer use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .base import ArrayDataset, DataBundle, MissingDatasetError, split_indices
from .cifar10 import CIFAR10_CLASSES, load_cifar10
from .datasets import (
    DEFAULT_FASHION_MNIST_ROOT,
    FASHION_MNIST_CLASSES,
    find_fashion_mnist,
    load_digits,
    load_fashion_mnist,
)
from .folder import IMAGENET_MEAN, IMAGENET_STD, load_image_folder
from .idx import read_idx, write_idx

__all__ = [
    "ArrayDataset",
    "CIFAR10_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataBundle",
    "MissingDatasetError",
    "DEFAULT_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "available_datasets",
    "find_fashion_mnist",
    "load_cifar10",
    "load_image_folder",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "read_idx",
    "register_dataset",
    "split_indices",
    "write_idx",
]

_LOADERS: dict[str, Callable[..., DataBundle]] = {}


def register_dataset(name: str, loader: Callable[..., DataBundle]) -> None:
    """Make ``loader(data_root=..., seed=..., **options)`` available as ``load_dataset(name)``."""
    _LOADERS[name] = loader


def available_datasets() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(
    name: str, data_root: str | os.PathLike | None = None, seed: int = 0, **options: Any
) -> DataBundle:
    """Load a data set by name.

    Args:
        name: one of :func:`available_datasets` (``digits``, ``fashion-mnist``, ...).
        data_root: where its files are (ignored by ``digits``).
        seed: the split seed.
        **options: loader-specific options (e.g. ``train_subset``, ``download``).

    Raises:
        ValueError: for an unknown name (the known names are listed).
        MissingDatasetError: when the files are missing (the message says how to get them).
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(available_datasets())}"
        ) from None
    return loader(data_root=data_root, seed=seed, **options)


def _digits(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    return load_digits(seed=seed, **options)


def _fashion(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    return load_fashion_mnist(root=data_root, seed=seed, **options)


def _cifar10(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    return load_cifar10(root=data_root, seed=seed, **options)


def _folder(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    return load_image_folder(root=data_root, seed=seed, **options)


register_dataset("digits", _digits)
register_dataset("fashion-mnist", _fashion)
register_dataset("cifar10", _cifar10)
register_dataset("folder", _folder)


def _scenes(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    from .scenes import load_scenes  # OpenCV compositing, loaded on demand

    return load_scenes(data_root=data_root, seed=seed, **options)


register_dataset("scenes", _scenes)


def _voc_part(data_root: Any = None, seed: int = 0, **options: Any) -> DataBundle:
    from .voc_part import load_voc_part

    return load_voc_part(root=data_root, seed=seed, **options)


register_dataset("voc-part", _voc_part)
