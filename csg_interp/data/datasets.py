"""The built-in data sets: scikit-learn digits (always present) and Fashion-MNIST (idx files).

Every loader returns a :class:`~csg_interp.data.DataBundle` with train / val / test splits of
images in [0, 1] (stored as uint8) and the per-channel statistics of the training split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .base import ArrayDataset, DataBundle, MissingDatasetError, channel_stats, split_indices
from .idx import read_idx

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DEFAULT_FASHION_MNIST_ROOT",
    "load_digits",
    "load_fashion_mnist",
    "find_fashion_mnist",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DEFAULT_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

_FMNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def load_digits(val_size: int = 200, test_size: int = 360, seed: int = 0) -> DataBundle:
    """scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes), split by a seeded shuffle.

    Pixel values 0..16 are scaled to 0..255 uint8.

    Args:
        val_size: images in the validation split.
        test_size: images in the test split.
        seed: the split's seed.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    images = torch.from_numpy((data.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(data.target.astype(np.int64))
    rest, test_idx = split_indices(len(labels), test_size, seed)
    train_rel, val_rel = split_indices(len(rest), val_size, seed + 1)
    classes = [str(i) for i in range(10)]
    full = ArrayDataset(images, labels, classes)
    train = full.subset(rest[train_rel])
    mean, std = channel_stats(train.images)
    return DataBundle(
        "digits", train, full.subset(rest[val_rel]), full.subset(test_idx), classes, mean, std,
        augment="none", info={"source": "sklearn.datasets.load_digits", "split_seed": seed},
    )  # fmt: skip


def _candidate_dirs(root: Path) -> list[Path]:
    return [root, root / "FashionMNIST" / "raw", root / "fashion-mnist", root / "raw"]


def find_fashion_mnist(root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Locate the four Fashion-MNIST idx files.

    Accepted layouts under ``root``: the flat folder of Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/*-ubyte.gz``) and torchvision's
    ``FashionMNIST/raw/*-ubyte[.gz]``. Each file may be gzipped or not.

    Raises:
        MissingDatasetError: naming the folders searched and how to get the data.
    """
    root = Path(root or os.environ.get("CSG_INTERP_FASHION_MNIST", DEFAULT_FASHION_MNIST_ROOT))
    for folder in _candidate_dirs(root):
        found = {}
        for key, stem in _FMNIST_FILES.items():
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    found[key] = folder / name
                    break
        if len(found) == len(_FMNIST_FILES):
            return found
    searched = ", ".join(str(p) for p in _candidate_dirs(root))
    raise MissingDatasetError(
        f"Fashion-MNIST not found (searched {searched}). Install Debian's package "
        "(sudo apt-get install dataset-fashion-mnist), pass `data_root=DIR`, a folder with the "
        "four *-ubyte[.gz] files (flat, or torchvision's FashionMNIST/raw layout), or pass "
        "`download=True` on a machine with internet."
    )


def _download_fashion_mnist(root: Path) -> dict[str, Path]:
    import torchvision

    torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
    torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    return find_fashion_mnist(root)


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    val_size: int = 5000,
    seed: int = 0,
    train_subset: int | None = None,
    download: bool = False,
) -> DataBundle:
    """Fashion-MNIST (Xiao et al., 2017): 60k train / 10k test 28×28 grey images, 10 classes.

    The 60k training images are split deterministically into train and val (``val_size``); the
    test split is the official 10k.

    Args:
        root: folder with the idx files (default: the Debian package's folder, or the
            ``CSG_INTERP_FASHION_MNIST`` environment variable).
        val_size: validation images taken from the 60k.
        seed: split seed.
        train_subset: keep only this many training images (seeded), for quick runs.
        download: fetch with torchvision when the files are missing (needs internet).

    Raises:
        MissingDatasetError: when the files are missing and ``download`` is False.
        ValueError: when a file is corrupt or the counts do not match.
    """
    try:
        files = find_fashion_mnist(root)
    except MissingDatasetError:
        if not download:
            raise
        files = _download_fashion_mnist(Path(root or "data"))
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"Fashion-MNIST {split} files disagree: images {images.shape}, labels {labels.shape}"
            )
    train_images = torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1)
    train_labels = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    test = ArrayDataset(
        torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        FASHION_MNIST_CLASSES,
    )
    full = ArrayDataset(train_images, train_labels, FASHION_MNIST_CLASSES)
    keep, val_idx = split_indices(len(full), min(val_size, len(full) // 5), seed)
    if train_subset is not None and train_subset < len(keep):
        keep = np.sort(np.random.RandomState(seed + 1).permutation(keep)[:train_subset])
    train = full.subset(keep)
    mean, std = channel_stats(train.images)
    return DataBundle(
        "fashion-mnist", train, full.subset(val_idx), test, FASHION_MNIST_CLASSES, mean, std,
        augment="flip_shift",
        info={"source": str(files["train_images"].parent), "split_seed": seed,
              "train_subset": train_subset},
    )  # fmt: skip
