"""PASCAL-Part animal instance crops with object masks -- the CSG paper's VOC Part data set.

The reference code (``hyliang96/CSGCNN``, ``VOCPart/VOC/preprocess.py``; ``docs/method.md`` §6a, §7)
crops every bird / cat / dog / cow / horse / sheep instance of PASCAL-Part (VOC2010 trainval) to
a square around its mask's bounding box (side = the longer side, zero padding outside the
image), resizes it to 128×128 (LANCZOS for the image, NEAREST for the masks) and splits **by
image**: 70 % of the VOC2010 trainval image ids go to ``train.txt``, the rest to ``val.txt``
(``random.seed(0)``; 7072 / 3031 ids; 5344 instances). Get the preprocessed folder from the
reference's README (a zip on Google Drive) or run its ``preprocess.py``; nothing is downloaded
here.

On-disk layout read by :func:`load_voc_part` (the reference's, unchanged)::

    ROOT/processed/
        128x128/                                   (also 64x64/ or 32x32/)
            obj_img/<class>-<instance>-<image id>.jpg        RGB crop
            obj_mask/<class>-<instance>-<image id>.mask.bmp  object mask, 0 / 255 (or 0 / 1)
            part_mask/<class>-<instance>-<image id>/<PART>.bmp   (not read: no metric uses it)
        metadata/
            train.txt                              one VOC image id per line
            val.txt

``<class>`` is one of :data:`VOC_PART_CLASSES`, ``<instance>`` an integer and ``<image id>`` a
VOC id such as ``2008_000008``. ``ROOT`` may also be the ``processed`` folder itself.

Splits: ``test`` = the instances of ``val.txt`` (what the paper evaluates on); ``train`` / ``val``
= the instances of ``train.txt``, split **by image id** (``val_fraction`` of the ids, seeded), so
no image contributes to two splits.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .base import ArrayDataset, DataBundle, MissingDatasetError, channel_stats

__all__ = ["VOC_PART_CLASSES", "VOC_PART_SIZES", "find_voc_part", "load_voc_part"]

VOC_PART_CLASSES: list[str] = ["bird", "cat", "dog", "cow", "horse", "sheep"]
VOC_PART_SIZES: tuple[int, ...] = (32, 64, 128)
_NAME = re.compile(r"^(?P<cls>[a-z]+)-(?P<instance>\d+)-(?P<image>[^-/]+)\.jpg$")


def find_voc_part(root: str | os.PathLike, size: int = 128) -> Path:
    """The ``processed`` folder under ``root`` (``root`` itself or ``root/processed``).

    Raises:
        MissingDatasetError: when neither holds ``<size>x<size>/obj_img`` and ``metadata/``;
            the message describes the layout and where to get it.
    """
    if size not in VOC_PART_SIZES:
        raise ValueError(
            f"size must be one of {VOC_PART_SIZES} (the reference's crops), got {size}"
        )
    root = Path(root)
    for folder in (root, root / "processed"):
        if (folder / f"{size}x{size}" / "obj_img").is_dir() and (folder / "metadata").is_dir():
            return folder
    raise MissingDatasetError(
        f"VOC Part crops not found under {root} (looked for {size}x{size}/obj_img and metadata/ "
        f"in {root} and {root / 'processed'}). Download the preprocessed zip linked from the "
        "README of github.com/hyliang96/CSGCNN (VOCPart) or run its VOC/preprocess.py on "
        "PASCAL-Part + VOC2010, then pass `data_root=DIR`, the folder holding processed/."
    )


def _read_ids(path: Path) -> set[str]:
    if not path.is_file():
        raise MissingDatasetError(
            f"{path} is missing: the split files train.txt and val.txt list image ids"
        )
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _load_pairs(folder: Path, names: list[str]) -> tuple[Tensor, Tensor]:
    images, masks = [], []
    for name in names:
        with Image.open(folder / "obj_img" / name) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
        mask_path = folder / "obj_mask" / name.replace(".jpg", ".mask.bmp")
        if not mask_path.is_file():
            raise MissingDatasetError(f"object mask {mask_path} is missing for {name}")
        with Image.open(mask_path) as mask:
            array = np.asarray(mask.convert("L"))
        masks.append(array > (127 if array.max() > 1 else 0))
    image_tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return image_tensor, torch.from_numpy(np.stack(masks))


def _mask_boxes(masks: Tensor) -> Tensor:
    """Tight xyxy pixel-edge boxes of (N, H, W) masks; zeros for an empty mask."""
    from torchvision.ops import masks_to_boxes

    boxes = masks_to_boxes(masks).float()
    boxes[:, 2:] += 1.0
    boxes[~masks.flatten(1).any(dim=1)] = 0.0
    return boxes


def load_voc_part(
    root: str | os.PathLike | None = None,
    size: int = 128,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> DataBundle:
    """Load the reference's VOC Part crops (layout in the module docstring).

    Args:
        root: the folder holding ``processed/`` (or ``processed`` itself); default: the
            ``CSG_INTERP_VOC_PART`` environment variable.
        size: crop side, 128 in the paper (32 and 64 are the reference's other options).
        seed: seed of the image-level train / val split of ``train.txt``.
        val_fraction: share of ``train.txt``'s image ids held out as ``val``.

    Returns:
        A :class:`DataBundle` named ``"voc-part"`` (uint8 RGB crops, six classes) whose splits
        carry ``extras["masks"]`` (bool (N, size, size) object masks) and ``extras["boxes"]``
        (the masks' tight boxes, xyxy pixel-edge); ``augment="flip_shift"`` as the reference's
        RandomCrop + HFlip. ``mean``/``std`` are the training crops' (the reference normalises
        with ImageNet's).

    Raises:
        MissingDatasetError: the folder, a split file or a mask is missing.
        ValueError: a file name that does not follow ``<class>-<instance>-<image id>.jpg``, an
            unknown class, or a split without instances.
    """
    root = root or os.environ.get("CSG_INTERP_VOC_PART")
    if root is None:
        raise MissingDatasetError(
            "VOC Part needs `data_root=DIR` (or CSG_INTERP_VOC_PART) pointing at the reference's "
            "preprocessed folder; see csg_interp.data.voc_part for the layout"
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    processed = find_voc_part(root, size)
    folder = processed / f"{size}x{size}"
    train_ids = _read_ids(processed / "metadata" / "train.txt")
    test_ids = _read_ids(processed / "metadata" / "val.txt")
    held = sorted(train_ids)
    order = np.random.RandomState(seed).permutation(len(held))
    val_ids = {held[i] for i in order[: max(1, round(val_fraction * len(held)))]}
    names: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for name in sorted(os.listdir(folder / "obj_img")):
        match = _NAME.match(name)
        if match is None:
            raise ValueError(
                f"{folder / 'obj_img' / name}: expected <class>-<instance>-<image id>.jpg"
            )
        if match["cls"] not in VOC_PART_CLASSES:
            raise ValueError(
                f"{name}: unknown class {match['cls']!r}; expected one of {VOC_PART_CLASSES}"
            )
        image_id = match["image"]
        split = "test" if image_id in test_ids else "val" if image_id in val_ids else (
            "train" if image_id in train_ids else None
        )  # fmt: skip
        if split is None:
            continue  # an instance of an image in neither list (the reference skips it too)
        names[split].append(name)
        labels[split].append(VOC_PART_CLASSES.index(match["cls"]))
    splits = {}
    for split, files in names.items():
        if not files:
            raise ValueError(f"the VOC Part {split} split has no instances under {folder}")
        images, masks = _load_pairs(folder, files)
        splits[split] = ArrayDataset(
            images, torch.tensor(labels[split]), VOC_PART_CLASSES,
            {"masks": masks, "boxes": _mask_boxes(masks)},
        )  # fmt: skip
    mean, std = channel_stats(splits["train"].images)
    return DataBundle(
        "voc-part", splits["train"], splits["val"], splits["test"], VOC_PART_CLASSES, mean, std,
        augment="flip_shift",
        info={"source": str(processed), "size": size, "split_seed": seed,
              "val_fraction": val_fraction, "box_format": "xyxy pixel-edge",
              "test_split": "metadata/val.txt"},
    )  # fmt: skip
