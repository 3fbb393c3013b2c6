"""Scenes with localization ground truth, built without downloads.

Each scene is a grey canvas (default 64×64) holding **one** labelled object -- an item of a source
data set (Fashion-MNIST by default) pasted at a random position and scale -- plus distractor
clutter from a *disjoint* source (scikit-learn's handwritten digits for Fashion-MNIST objects,
synthetic strokes for digit objects), so the label stays unambiguous. Clutter never touches the
object's box. Every scene comes with

* ``label``: the object's class,
* ``box``: the object's box, **xyxy in pixel-edge coordinates** (the box covers the pixels
  ``x1 <= x < x2`` and ``y1 <= y < y2``; a one-pixel box is ``(x, y, x + 1, y + 1)``), the tight
  box of the object mask,
* ``mask``: the object's pixels (the pasted item above ``mask_threshold``).

Generation is deterministic given the seed. ``load_scenes`` (``load_dataset("scenes")``) builds
train / val / test scenes from the source's train / val / test splits and matching clutter splits,
so no object or clutter image is shared between splits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from .base import ArrayDataset, DataBundle, MissingDatasetError, channel_stats

__all__ = [
    "SCENE_SOURCES",
    "compose_scenes",
    "make_scene_dataset",
    "synthetic_clutter",
    "load_scenes",
]

SCENE_SOURCES: tuple[str, ...] = ("fashion-mnist", "digits")

#: Default object scale (factor on the source item's side) per source: 28 px Fashion-MNIST items
#: become 20–36 px, 8 px digits 20–36 px.
_DEFAULT_SCALE = {"fashion-mnist": (0.72, 1.28), "digits": (2.5, 4.5)}
_MAX_PLACEMENT_TRIES = 25


def _check_range(name: str, value: Sequence[float], low: float) -> tuple[float, float]:
    if len(value) != 2 or not (low <= value[0] <= value[1]):
        raise ValueError(f"{name} must be a (min, max) pair with {low} <= min <= max, got {value}")
    return float(value[0]), float(value[1])


def _as_uint8_stack(images: Tensor | np.ndarray, name: str) -> np.ndarray:
    array = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if array.ndim == 4:
        if array.shape[1] != 1:
            raise ValueError(f"{name} must be grey images (N, 1, H, W), got shape {array.shape}")
        array = array[:, 0]
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty stack (N, H, W) or (N, 1, H, W), got {array.shape}"
        )
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 1:
            raise ValueError(f"float {name} must lie in [0, 1]; pass uint8 for 0..255 values")
        array = np.round(array * 255.0).astype(np.uint8)
    return array


def _resize(patch: np.ndarray, side: int) -> np.ndarray:
    """Resize so that the longer side is ``side`` px (OpenCV area/linear interpolation)."""
    height, width = patch.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(patch, size, interpolation=interpolation)


def compose_scenes(
    objects: Tensor | np.ndarray,
    clutter: Tensor | np.ndarray,
    canvas: int = 64,
    scale: Sequence[float] = (0.72, 1.28),
    clutter_count: Sequence[int] = (1, 3),
    clutter_size: Sequence[int] = (14, 22),
    mask_threshold: float = 0.05,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Paste each object onto its own canvas with clutter; return images, boxes and masks.

    Scene ``i`` holds object ``i`` at a random scale and position (uniform, fully inside the
    canvas) and ``clutter_count`` randomly chosen clutter patches, each resized so that its
    longer side is drawn from ``clutter_size`` and placed so that it does not touch the object's
    box (a patch that finds no free spot in 25 tries is left out). Pixels combine by maximum.

    Args:
        objects: uint8 (N, 1, h, w) or (N, h, w) grey items (float in [0, 1] also accepted).
        clutter: the distractor patches, same conventions; drawn with replacement.
        canvas: side of the square scenes in pixels.
        scale: (min, max) factor on the object's longer side, drawn uniformly.
        clutter_count: (min, max) number of clutter patches per scene, inclusive.
        clutter_size: (min, max) longer side of a clutter patch in pixels, inclusive.
        mask_threshold: an object pixel belongs to the mask when its value (in [0, 1]) is at
            least this.
        seed: seed of the ``numpy.random.RandomState`` that draws everything.

    Returns:
        ``(images, boxes, masks)``: uint8 (N, 1, canvas, canvas); float32 (N, 4) boxes in xyxy
        pixel-edge coordinates (tight around the mask); bool (N, canvas, canvas) object masks.

    Raises:
        ValueError: for bad shapes or ranges, or when the largest object does not fit the canvas.

    Example:
        >>> objects = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
        >>> objects[:, :, 1:3, 1:3] = 255
        >>> images, boxes, masks = compose_scenes(objects, objects, canvas=16, scale=(1, 1),
        ...                                       clutter_count=(0, 0), seed=0)
        >>> images.shape, (boxes[:, 2:] - boxes[:, :2]).tolist()
        (torch.Size([2, 1, 16, 16]), [[2.0, 2.0], [2.0, 2.0]])
    """
    items = _as_uint8_stack(objects, "objects")
    patches = _as_uint8_stack(clutter, "clutter")
    scale_lo, scale_hi = _check_range("scale", scale, 1e-6)
    count_lo, count_hi = _check_range("clutter_count", clutter_count, 0)
    size_lo, size_hi = _check_range("clutter_size", clutter_size, 1)
    if not 0.0 < mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold must lie in (0, 1], got {mask_threshold}")
    largest = round(max(items.shape[1:]) * scale_hi)
    if largest > canvas or (count_hi > 0 and size_hi > canvas):
        raise ValueError(
            f"objects up to {largest} px (scale max {scale_hi}) or clutter up to {size_hi} px do "
            f"not fit a {canvas}×{canvas} canvas; lower the scale or enlarge the canvas"
        )
    rng = np.random.RandomState(seed)
    level = int(np.ceil(mask_threshold * 255.0))
    n = items.shape[0]
    images = np.zeros((n, canvas, canvas), dtype=np.uint8)
    masks = np.zeros((n, canvas, canvas), dtype=bool)
    boxes = np.zeros((n, 4), dtype=np.float32)
    for index in range(n):
        side = round(max(items.shape[1:]) * rng.uniform(scale_lo, scale_hi))
        item = _resize(items[index], side)
        height, width = item.shape
        top, left = rng.randint(0, canvas - height + 1), rng.randint(0, canvas - width + 1)
        images[index, top : top + height, left : left + width] = item
        masks[index, top : top + height, left : left + width] = item >= level
        ys, xs = np.nonzero(masks[index])
        if ys.size == 0:
            raise ValueError(
                f"object {index} has no pixel >= mask_threshold {mask_threshold}; it is blank"
            )
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        boxes[index] = box
        for _ in range(rng.randint(int(count_lo), int(count_hi) + 1)):
            source = patches[rng.randint(len(patches))]
            patch = _resize(source, rng.randint(int(size_lo), int(size_hi) + 1))
            _paste_clutter(images[index], patch, box, rng)
    return (
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(boxes),
        torch.from_numpy(masks),
    )


def _paste_clutter(
    image: np.ndarray, patch: np.ndarray, box: tuple[int, int, int, int], rng: np.random.RandomState
) -> bool:
    """Paste ``patch`` (by maximum) where it does not touch ``box`` (1-px gap); False if no room."""
    canvas = image.shape[0]
    height, width = patch.shape
    x1, y1, x2, y2 = box
    for _ in range(_MAX_PLACEMENT_TRIES):
        top, left = rng.randint(0, canvas - height + 1), rng.randint(0, canvas - width + 1)
        separated = (
            left + width < x1 or left > x2 or top + height < y1 or top > y2
        )  # a gap of at least one pixel between the patch and the box
        if separated:
            region = image[top : top + height, left : left + width]
            np.maximum(region, patch, out=region)
            return True
    return False


def synthetic_clutter(count: int = 64, size: int = 12, seed: int = 0) -> Tensor:
    """Stroke patches (random line segments and arcs, OpenCV) used as clutter for digit objects.

    Args:
        count: number of patches.
        size: side of each square patch.
        seed: seed of the drawing.

    Returns:
        uint8 tensor (count, 1, size, size).
    """
    if count < 1 or size < 4:
        raise ValueError(f"need count >= 1 and size >= 4, got count={count}, size={size}")
    rng = np.random.RandomState(seed)
    patches = np.zeros((count, size, size), dtype=np.uint8)
    for patch in patches:
        for _ in range(rng.randint(1, 3)):
            if rng.rand() < 0.5:
                p1 = tuple(int(v) for v in rng.randint(0, size, 2))
                p2 = tuple(int(v) for v in rng.randint(0, size, 2))
                cv2.line(patch, p1, p2, 255, thickness=1)
            else:
                centre = tuple(int(v) for v in rng.randint(2, size - 2, 2))
                axes = tuple(int(v) for v in rng.randint(2, size // 2, 2))
                start = int(rng.randint(0, 360))
                cv2.ellipse(patch, centre, axes, 0, start, start + 150, 255, thickness=1)
    return torch.from_numpy(patches).unsqueeze(1)


def make_scene_dataset(
    objects: ArrayDataset,
    clutter: Tensor | np.ndarray,
    seed: int = 0,
    **options: Any,
) -> ArrayDataset:
    """Scenes from every item of ``objects``: an :class:`ArrayDataset` with ``boxes`` / ``masks``.

    Args:
        objects: the labelled items (one scene each, same order and labels).
        clutter: distractor patches (see :func:`compose_scenes`).
        seed: the generation seed.
        **options: forwarded to :func:`compose_scenes` (``canvas``, ``scale``, ...).

    Returns:
        ``ArrayDataset`` of uint8 scenes with ``extras={"boxes": (N, 4) float32 xyxy pixel-edge
        boxes, "masks": (N, H, W) bool object masks}``.
    """
    images, boxes, masks = compose_scenes(objects.images, clutter, seed=seed, **options)
    return ArrayDataset(images, objects.labels, objects.classes, {"boxes": boxes, "masks": masks})


def _subset(dataset: ArrayDataset, size: int | None, seed: int) -> ArrayDataset:
    if size is None or size >= len(dataset):
        return dataset
    if size < 1:
        raise ValueError(f"split sizes must be positive, got {size}")
    keep = np.sort(np.random.RandomState(seed).permutation(len(dataset))[:size])
    return dataset.subset(keep)


def load_scenes(
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
    source: str = "fashion-mnist",
    canvas: int = 64,
    train_size: int | None = 6000,
    val_size: int | None = 1000,
    test_size: int | None = 1000,
    scale: Sequence[float] | None = None,
    clutter_count: Sequence[int] = (1, 3),
    clutter_size: Sequence[int] = (14, 22),
    train_subset: int | None = None,
) -> DataBundle:
    """Scenes data set (``load_dataset("scenes", ...)``) with boxes and masks on every split.

    ``source="fashion-mnist"`` pastes Fashion-MNIST items (from ``data_root`` or the Debian
    folder; raises :class:`MissingDatasetError` when absent) among scikit-learn digits;
    ``source="digits"`` pastes digits among synthetic strokes and needs no files. Train / val /
    test scenes come from the source's train / val / test splits (subsampled to the given sizes,
    seeded) with clutter from the matching digits split, each split with its own generation seed.

    Args:
        data_root: Fashion-MNIST folder (ignored for digits).
        seed: seed of the source's splits, the subsampling and the scene generation.
        source: ``"fashion-mnist"`` or ``"digits"``.
        canvas: scene side in pixels.
        train_size, val_size, test_size: scenes per split (``None``: one per source item).
        scale: object scale range (default: 20–36 px objects for either source).
        clutter_count: (min, max) clutter patches per scene.
        clutter_size: (min, max) clutter side in pixels.
        train_subset: overrides ``train_size`` (the name the trainer's ``TrainConfig`` uses).

    Returns:
        A :class:`DataBundle` named ``"scenes"`` whose splits carry ``extras["boxes"]`` (xyxy,
        pixel-edge) and ``extras["masks"]``; ``info`` records the source and the generation
        settings.
    """
    from .datasets import load_digits, load_fashion_mnist

    if source not in SCENE_SOURCES:
        raise ValueError(f"unknown scenes source {source!r}; use one of {', '.join(SCENE_SOURCES)}")
    if train_subset is not None:
        train_size = train_subset
    digits = load_digits(seed=seed)
    if source == "fashion-mnist":
        try:
            objects = load_fashion_mnist(root=data_root, seed=seed)
        except MissingDatasetError as error:
            raise MissingDatasetError(
                f"{error} -- or build the scenes from digits: load_dataset('scenes', "
                "source='digits')"
            ) from None
        clutter = {split: getattr(digits, split).images for split in ("train", "val", "test")}
        clutter_name = "sklearn digits"
    else:
        objects = digits
        clutter = {
            split: synthetic_clutter(256, 12, seed=seed + offset)
            for offset, split in enumerate(("train", "val", "test"))
        }
        clutter_name = "synthetic strokes"
    settings = {
        "canvas": canvas,
        "scale": tuple(scale) if scale is not None else _DEFAULT_SCALE[source],
        "clutter_count": tuple(clutter_count),
        "clutter_size": tuple(clutter_size),
    }
    splits = {}
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for offset, split in enumerate(("train", "val", "test")):
        items = _subset(getattr(objects, split), sizes[split], seed + 10 + offset)
        splits[split] = make_scene_dataset(
            items, clutter[split], seed=seed * 1000 + offset, **settings
        )
    mean, std = channel_stats(splits["train"].images)
    return DataBundle(
        "scenes", splits["train"], splits["val"], splits["test"], objects.classes, mean, std,
        augment=objects.augment,
        info={"source": source, "object_source": objects.info.get("source"),
              "clutter": clutter_name, "split_seed": seed, "box_format": "xyxy pixel-edge",
              **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}},
    )  # fmt: skip
