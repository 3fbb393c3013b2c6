"""CIFAR-10 (Krizhevsky, 2009) read from its standard python batch format, without executing pickles.

The official archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` … ``data_batch_5`` (10,000 images each), ``test_batch`` and ``batches.meta``.
Each batch is a pickled dict: ``data`` is a uint8 array (N, 3072) holding the red, green and blue
32×32 planes of each image row by row, ``labels`` a list of N ints in 0..9; ``batches.meta``
holds ``label_names``. (Format described on https://www.cs.toronto.edu/~kriz/cifar.html; it is
also what ``torchvision.datasets.CIFAR10`` reads.)

A pickle can run arbitrary code when it is loaded, so these files are read with
:class:`SafeBatchUnpickler`, which only rebuilds plain containers and numpy arrays and refuses any
other object -- a file that tries to call anything else raises ``ValueError`` and runs nothing.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import ArrayDataset, DataBundle, MissingDatasetError, channel_stats, split_indices

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_FOLDER",
    "SafeBatchUnpickler",
    "find_cifar10",
    "load_cifar10",
    "read_cifar_batch",
    "write_cifar_batch",
    "write_cifar10_fixture",
]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
_TEST_FILE = "test_batch"
_META_FILE = "batches.meta"
_IMAGE_BYTES = 3 * 32 * 32

# The only callables a CIFAR batch pickle needs: numpy's array reconstruction (numpy 1.x and 2.x
# module paths) and dtypes. Everything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2
}


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle asked for a callable outside the allow-list (it was not called)."""


class SafeBatchUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds dicts, lists, strings, bytes, numbers and numpy arrays only.

    Any other global (``os.system``, ``builtins.eval``, a class of some package, ...) raises
    :class:`pickle.UnpicklingError` before it is called.

    Example:
        >>> SafeBatchUnpickler(io.BytesIO(pickle.dumps({"labels": [1, 2]}))).load()
        {'labels': [1, 2]}
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobalError(
            f"refused to load {module}.{name}: a CIFAR batch holds only arrays, lists and strings"
        )


def _as_str_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    return obj


def read_cifar_batch(path: str | os.PathLike) -> dict[str, Any]:
    """Read one CIFAR python batch (or ``batches.meta``) safely.

    Args:
        path: the file.

    Returns:
        The dict with ``str`` keys (the Python-2 pickles have ``bytes`` keys).

    Raises:
        ValueError: if the file is not a pickle, is truncated, or holds anything but plain data.

    Example:
        >>> batch = read_cifar_batch("cifar-10-batches-py/test_batch")  # doctest: +SKIP
        >>> batch["data"].shape
        (10000, 3072)
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        obj = SafeBatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except RefusedGlobalError as error:
        raise ValueError(f"{path}: not a CIFAR python batch ({error})") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise ValueError(f"{path}: truncated or corrupt CIFAR batch ({error!r})") from error
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: a CIFAR batch is a dict, got {type(obj).__name__}")
    return _as_str_keys(obj)


def write_cifar_batch(
    path: str | os.PathLike, images: np.ndarray, labels: np.ndarray, batch_label: str = "fixture"
) -> None:
    """Write images (N, 3, 32, 32) uint8 and labels as a CIFAR python batch. Used for fixtures.

    The layout matches the official files (bytes keys, ``data`` as (N, 3072) uint8 rows, pickle
    protocol 2).
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise ValueError(f"images must be (N, 3, 32, 32) uint8, got shape {images.shape}")
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": images.reshape(len(images), _IMAGE_BYTES),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(images))],
    }
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def find_cifar10(root: str | os.PathLike | None) -> Path:
    """Locate the ``cifar-10-batches-py`` folder: ``root`` itself or ``root/cifar-10-batches-py``.

    Raises:
        MissingDatasetError: naming the folders searched and how to get the data.
    """
    root = Path(root or os.environ.get("CSG_INTERP_CIFAR10", "data"))
    candidates = [root, root / CIFAR10_FOLDER]
    for folder in candidates:
        if all((folder / name).is_file() for name in [*_TRAIN_FILES, _TEST_FILE]):
            return folder
    raise MissingDatasetError(
        f"CIFAR-10 not found (searched {', '.join(str(p) for p in candidates)} for data_batch_1..5 "
        "and test_batch). Download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass `data_root=DIR` (the "
        "folder holding cifar-10-batches-py/), or pass `download=True` on a machine with internet."
    )


def _read_split(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in names:
        batch = read_cifar_batch(folder / name)
        if "data" not in batch or "labels" not in batch:
            raise ValueError(f"{folder / name}: a CIFAR batch needs 'data' and 'labels' entries")
        data = np.asarray(batch["data"])
        label = np.asarray(batch["labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
            raise ValueError(
                f"{folder / name}: 'data' must be uint8 (N, {_IMAGE_BYTES}), got "
                f"{data.dtype} {data.shape}"
            )
        if label.shape != (data.shape[0],):
            raise ValueError(
                f"{folder / name}: {data.shape[0]} images but {label.size} labels"
            )
        if label.size and (label.min() < 0 or label.max() >= len(CIFAR10_CLASSES)):
            raise ValueError(f"{folder / name}: labels must lie in 0..9, got {label.min()}..{label.max()}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(label)
    return np.concatenate(images), np.concatenate(labels)


def _class_names(folder: Path) -> list[str]:
    meta_path = folder / _META_FILE
    if not meta_path.is_file():
        return list(CIFAR10_CLASSES)
    names = read_cifar_batch(meta_path).get("label_names")
    if not names or len(names) != len(CIFAR10_CLASSES):
        raise ValueError(f"{meta_path}: expected 10 label_names, got {names!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_cifar10(
    root: str | os.PathLike | None = None,
    val_size: int = 5000,
    seed: int = 0,
    train_subset: int | None = None,
    download: bool = False,
) -> DataBundle:
    """CIFAR-10: 50k train / 10k test 32×32 RGB images, 10 classes, from the python batches.

    The 50k training images are split deterministically into train and val (``val_size``,
    capped at a fifth of them); the test split is the official ``test_batch``. Images stay uint8
    in memory (150 MB for the full set). Augmentation: ``flip_shift`` (random horizontal flip and
    shift, the standard CIFAR recipe of He et al., 2016).

    Args:
        root: the ``cifar-10-batches-py`` folder or its parent (default: ``$CSG_INTERP_CIFAR10``
            or ``./data``).
        val_size: validation images taken from the 50k.
        seed: split seed.
        train_subset: keep only this many training images (seeded), for quick runs.
        download: fetch with torchvision when the files are missing (needs internet).

    Returns:
        A :class:`~csg_interp.data.DataBundle` named ``cifar10``.

    Raises:
        MissingDatasetError: when the files are missing and ``download`` is False.
        ValueError: when a file is corrupt, not a CIFAR batch, or carries code.

    Example:
        >>> bundle = load_cifar10("data", train_subset=1000)  # doctest: +SKIP
        >>> bundle.train.image_shape
        (3, 32, 32)
    """
    try:
        folder = find_cifar10(root)
    except MissingDatasetError:
        if not download:
            raise
        import torchvision

        target = Path(root or "data")
        torchvision.datasets.CIFAR10(str(target), train=True, download=True)
        folder = find_cifar10(target)
    classes = _class_names(folder)
    train_images, train_labels = _read_split(folder, _TRAIN_FILES)
    test_images, test_labels = _read_split(folder, [_TEST_FILE])
    full = ArrayDataset(torch.from_numpy(train_images), torch.from_numpy(train_labels), classes)
    test = ArrayDataset(torch.from_numpy(test_images), torch.from_numpy(test_labels), classes)
    keep, val_idx = split_indices(len(full), min(val_size, len(full) // 5), seed)
    if train_subset is not None:
        if train_subset < 1:
            raise ValueError(f"train_subset must be a positive number of images, got {train_subset}")
        if train_subset < len(keep):
            keep = np.sort(np.random.RandomState(seed + 1).permutation(keep)[:train_subset])
    train = full.subset(keep)
    mean, std = channel_stats(train.images)
    return DataBundle(
        "cifar10", train, full.subset(val_idx), test, classes, mean, std, augment="flip_shift",
        info={"source": str(folder), "split_seed": seed, "train_subset": train_subset},
    )  # fmt: skip


def write_cifar10_fixture(
    root: str | os.PathLike, per_batch: int = 20, test_size: int = 20, seed: int = 0
) -> Path:
    """Write a tiny CIFAR-10 tree in the real format (for tests and smoke runs of the recipes).

    Images are class-coloured noise (class ``c`` has a brighter channel ``c % 3`` and a
    class-dependent stripe), so a model can learn them a little.

    Args:
        root: the parent folder; ``root/cifar-10-batches-py`` is created.
        per_batch: images in each of the five training batches.
        test_size: images in ``test_batch``.
        seed: the generator's seed.

    Returns:
        The ``cifar-10-batches-py`` folder.
    """
    folder = Path(root) / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % len(CIFAR10_CLASSES)
        rng.shuffle(labels)
        images = rng.randint(0, 120, size=(n, 3, 32, 32)).astype(np.int64)
        for i, label in enumerate(labels):
            images[i, label % 3] += 100
            images[i, :, 3 * label : 3 * label + 3, :] += 30
        return np.clip(images, 0, 255).astype(np.uint8), labels

    for index, name in enumerate(_TRAIN_FILES, start=1):
        images, labels = make(per_batch)
        write_cifar_batch(folder / name, images, labels, f"training batch {index} of 5")
    images, labels = make(test_size)
    write_cifar_batch(folder / _TEST_FILE, images, labels, "testing batch 1 of 1")
    meta = {b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_vis": _IMAGE_BYTES,
            b"num_cases_per_batch": per_batch}
    with open(folder / _META_FILE, "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder
