"""Image folders on disk (``root/<class>/<image>``, torchvision's ImageFolder layout) as a DataBundle.

Two layouts are accepted:

* **split**: ``root/train/<class>/…`` with optional ``root/val/<class>/…`` and
  ``root/test/<class>/…``; a missing val or test split is carved out of train (stratified, seeded).
* **flat**: ``root/<class>/…``; train / val / test are carved out per class (stratified, seeded).

Class names are the sorted sub-folder names of the training folder (as torchvision's
``ImageFolder``); label ``i`` is the ``i``-th name.

Every image goes through the standard evaluation transform of torchvision's ImageNet models,
done once at load time and kept in memory as uint8: EXIF orientation applied, converted to RGB
(or grey with ``channels=1``), shorter side resized to ``resize`` (default ``image_size · 256/224``,
i.e. 256 for 224), centre crop ``image_size``. Mode handling: grey (``L``, ``1``) is replicated to
three channels; 16-bit grey (``I;16``, ``I``) is scaled to 8 bits; images with an alpha channel
(``RGBA``, ``LA``, palette with transparency) are composited onto white; palette and CMYK images
are converted; multi-frame files (GIF, TIFF) contribute their first frame.

What is skipped, and what is an error (documented in docs/training-at-scale.md):

* files whose extension is not an image extension (``IMAGE_EXTENSIONS``; e.g. ``README.txt``,
  ``labels.csv``), hidden files and files lying directly in ``root`` are skipped and listed in
  ``bundle.info["skipped_files"]``;
* a file with an image extension that cannot be decoded (corrupt, truncated, not really an image)
  is an error naming every such file -- or, with ``skip_corrupt=True``, skipped with a warning and
  listed in ``bundle.info["corrupt_files"]``;
* an empty class folder, a missing root, a root without class folders, or a val/test class that
  train lacks is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from csg_interp.errors import InvalidParameterError

from .base import ArrayDataset, DataBundle, MissingDatasetError, channel_stats

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "find_image_files",
    "load_image_folder",
    "read_image",
]

logger = logging.getLogger(__name__)

# torchvision.datasets.folder.IMG_EXTENSIONS (lower case; matching is case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
)  # fmt: skip
# The statistics torchvision's ImageNet weights were trained with (torchvision.transforms docs).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SPLITS = ("train", "val", "test")


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def find_image_files(class_root: Path) -> tuple[list[str], list[tuple[Path, int]], list[Path]]:
    """List ``class_root/<class>/**/<image>`` files.

    Args:
        class_root: a folder whose sub-folders are the classes.

    Returns:
        ``(classes, samples, skipped)``: sorted class names, ``(path, label)`` pairs sorted by
        path, and the files that were skipped (non-image extension, hidden, or loose in
        ``class_root``).

    Raises:
        ValueError: if ``class_root`` has no class folder or a class folder holds no image.
    """
    classes = sorted(
        entry.name for entry in class_root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    skipped = sorted(p for p in class_root.iterdir() if p.is_file())
    if not classes:
        raise ValueError(
            f"{class_root} has no class folders; expected {class_root}/<class name>/<image files> "
            "(torchvision ImageFolder layout)"
        )
    samples: list[tuple[Path, int]] = []
    empty = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (class_root / name).rglob("*") if p.is_file())
        images = [p for p in files if _is_image_name(p) and not p.name.startswith(".")]
        kept = set(images)
        skipped += [p for p in files if p not in kept]
        if not images:
            empty.append(name)
        samples += [(p, label) for p in images]
    if empty:
        raise ValueError(
            f"class folder(s) without any image ({', '.join(IMAGE_EXTENSIONS)}) in {class_root}: "
            f"{', '.join(empty)}; add images or remove the folder(s)"
        )
    return classes, samples, sorted(skipped)


def _to_rgb_or_grey(image, channels: int):
    """Convert a decoded PIL image of any common mode to ``RGB`` (channels=3) or ``L`` (1)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def read_image(path: str | os.PathLike, image_size: int, resize: int | None = None,
               channels: int = 3) -> torch.Tensor:
    """Decode one image file and apply the standard evaluation transform.

    EXIF orientation → RGB / grey (see the module docstring for modes) → resize the shorter side
    to ``resize`` → centre crop ``image_size`` (``torchvision.transforms.functional``).

    Args:
        path: the file.
        image_size: side of the square output.
        resize: shorter side before the crop (default ``round(image_size * 256 / 224)``).
        channels: 3 (RGB) or 1 (grey).

    Returns:
        uint8 tensor (channels, image_size, image_size).

    Raises:
        ValueError: if the file cannot be decoded (the message names it).

    Example:
        >>> read_image("cat.jpg", 224).shape  # doctest: +SKIP
        torch.Size([3, 224, 224])
    """
    from PIL import Image, ImageOps, UnidentifiedImageError
    from torchvision.transforms import functional as F

    resize = resize or round(image_size * 256 / 224)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            image = _to_rgb_or_grey(image, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: cannot decode the image ({type(error).__name__}: {error})") from error
    image = F.center_crop(F.resize(image, resize), [image_size, image_size])
    return F.pil_to_tensor(image)


def _stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class (seeded): ``floor(fraction · n_c)`` samples to val and to test, the rest to train.

    Every class keeps at least one training sample (val, then test, give way).
    """
    rng = np.random.RandomState(seed)
    train, val, test = [], [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(np.floor(test_fraction * len(members)))
        n_val = int(np.floor(val_fraction * len(members)))
        excess = max(0, n_test + n_val - (len(members) - 1))
        from_val = min(n_val, excess)
        n_val, n_test = n_val - from_val, n_test - (excess - from_val)
        test.append(members[:n_test])
        val.append(members[n_test : n_test + n_val])
        train.append(members[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))


def _decode_all(
    samples: Sequence[tuple[Path, int]], image_size: int, resize: int | None, channels: int,
    skip_corrupt: bool, num_workers: int,
) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
    from tqdm.auto import tqdm

    def decode(sample: tuple[Path, int]) -> torch.Tensor | str:
        try:
            return read_image(sample[0], image_size, resize, channels)
        except ValueError as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        results = list(tqdm(pool.map(decode, samples), total=len(samples), desc="reading images",
                            unit="img", disable=len(samples) < 500, leave=False))
    corrupt = [(path, r) for (path, _), r in zip(samples, results) if isinstance(r, str)]
    if corrupt and not skip_corrupt:
        details = "; ".join(message for _, message in corrupt[:5])
        more = f" (and {len(corrupt) - 5} more)" if len(corrupt) > 5 else ""
        raise ValueError(
            f"{len(corrupt)} image file(s) cannot be decoded: {details}{more}. Delete or replace "
            "them, or pass `skip_corrupt=True` to leave them out"
        )
    for path, message in corrupt:
        logger.warning("skipping corrupt image: %s", message)
    good = [i for i, r in enumerate(results) if not isinstance(r, str)]
    images = torch.stack([results[i] for i in good]) if good else torch.zeros(
        0, channels, image_size, image_size, dtype=torch.uint8)
    labels = torch.tensor([samples[i][1] for i in good], dtype=torch.long)
    return images, labels, [path for path, _ in corrupt]


def load_image_folder(
    root: str | os.PathLike | None,
    image_size: int = 224,
    resize: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    train_subset: int | None = None,
    channels: int = 3,
    stats: str = "dataset",
    skip_corrupt: bool = False,
    num_workers: int | None = None,
) -> DataBundle:
    """Load an image-folder tree (torchvision's ImageFolder layout) into memory.

    Args:
        root: the tree (``--data-root``); see the module docstring for the two layouts.
        image_size: side of the square crop (224 for torchvision ResNet-18/50).
        resize: shorter side before the centre crop (default ``round(image_size · 256/224)``).
        val_fraction: fraction of each class held out for val when ``root/val`` does not exist.
        test_fraction: fraction of each class held out for test when ``root/test`` does not exist.
        seed: the split seed.
        train_subset: decode only this many (seeded) training images.
        channels: 3 (RGB) or 1 (grey).
        stats: ``"dataset"`` (per-channel mean/std of the training split) or ``"imagenet"`` (the
            statistics torchvision's ImageNet weights expect; use it with ``--weights``).
        skip_corrupt: leave out files that cannot be decoded instead of failing.
        num_workers: decoding threads (default: up to 8, the CPU count).

    Returns:
        A :class:`~csg_interp.data.DataBundle` named ``folder``; ``info`` lists the layout, the
        skipped and the corrupt files.

    Raises:
        MissingDatasetError: if ``root`` does not exist.
        ValueError: for a tree without classes, an empty class, undecodable files (unless
            ``skip_corrupt``), or bad options.

    Example:
        >>> bundle = load_image_folder("photos/", image_size=64)  # doctest: +SKIP
        >>> bundle.classes
        ['cat', 'dog']
    """
    if root is None or not Path(root).is_dir():
        raise MissingDatasetError(
            f"image folder {root!s} not found; pass `data_root=DIR` with DIR/<class>/<images> "
            "or DIR/train/<class>/<images> (plus optional DIR/val, DIR/test)"
        )
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if stats not in ("dataset", "imagenet"):
        raise ValueError(f"stats must be 'dataset' or 'imagenet', got {stats!r}")
    if stats == "imagenet" and channels != 3:
        raise ValueError("stats='imagenet' needs channels=3 (ImageNet statistics are per RGB channel)")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {value}")
    root = Path(root)
    split_layout = (root / "train").is_dir() and any(
        p.is_dir() for p in (root / "train").iterdir()
    )
    class_root = root / "train" if split_layout else root
    classes, train_samples, skipped = find_image_files(class_root)
    if len(classes) < 2:
        raise InvalidParameterError(
            f"{class_root} has one class folder ({classes[0]}); a classifier needs at least two "
            f"classes, so add a folder per class under {class_root}/ (or pass `data_root` at the "
            "folder above it)"
        )
    if split_layout:
        skipped += [p for p in root.iterdir() if p.is_file()]
    given: dict[str, list[tuple[Path, int]]] = {}
    for split in ("val", "test"):
        folder = root / split
        if split_layout and folder.is_dir():
            names, samples, extra = find_image_files(folder)
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise ValueError(
                    f"{folder} has class folder(s) that {class_root} lacks: {', '.join(unknown)}"
                )
            given[split] = [(path, classes.index(names[label])) for path, label in samples]
            skipped += extra
    workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
    labels = np.array([label for _, label in train_samples])
    order, val_idx, test_idx = _stratified_split(
        labels, 0.0 if "val" in given else val_fraction,
        0.0 if "test" in given else test_fraction, seed,
    )  # fmt: skip
    holdout = {"val": val_idx, "test": test_idx}
    if train_subset is not None:
        if train_subset < 1:
            raise ValueError(f"train_subset must be a positive number of images, got {train_subset}")
        if train_subset < len(order):
            order = np.sort(np.random.RandomState(seed + 2).permutation(order)[:train_subset])
    split_samples = {"train": [train_samples[i] for i in order]}
    for split in ("val", "test"):
        if split in given:
            split_samples[split] = given[split]
        else:
            split_samples[split] = [train_samples[i] for i in holdout[split]]
    datasets: dict[str, ArrayDataset] = {}
    corrupt: list[Path] = []
    for split in _SPLITS:
        images, split_labels, bad = _decode_all(
            split_samples[split], image_size, resize, channels, skip_corrupt, workers
        )
        corrupt += bad
        datasets[split] = ArrayDataset(images, split_labels, classes)
    if len(datasets["train"]) == 0:
        raise ValueError(f"no decodable training image under {class_root}")
    if skipped:
        logger.info("image folder: skipped %d non-image file(s), e.g. %s", len(skipped), skipped[0])
    if stats == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = channel_stats(datasets["train"].images)
    return DataBundle(
        "folder", datasets["train"], datasets["val"], datasets["test"], classes, mean, std,
        augment="flip_shift",
        info={
            "source": str(root), "layout": "split" if split_layout else "flat", "split_seed": seed,
            "image_size": image_size, "resize": resize or round(image_size * 256 / 224),
            "stats": stats, "train_subset": train_subset,
            "skipped_files": [str(p) for p in sorted(set(skipped))],
            "corrupt_files": [str(p) for p in corrupt],
        },
    )  # fmt: skip
