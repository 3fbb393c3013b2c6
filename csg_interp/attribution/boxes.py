"""Boxes from attribution maps: threshold, connected components, box.

Pure functions on tensors (numpy arrays are accepted too). **Box format everywhere: xyxy in
pixel-edge coordinates** -- a box ``(x1, y1, x2, y2)`` covers the pixels ``x1 <= x < x2`` and
``y1 <= y < y2`` of an H×W map, so ``0 <= x1 <= x2 <= W`` and a one-pixel box is
``(x, y, x + 1, y + 1)``. With this convention ``torchvision.ops.box_iou`` counts pixels
exactly. (``torchvision.ops.masks_to_boxes`` returns the last pixel's index as x2/y2; we add 1.)

Threshold modes (:data:`THRESHOLD_MODES`), each a function of one map ``m`` (H, W):

* ``"max_fraction"`` (default ``0.15``): keep ``m >= t·max(m)``, Grad-CAM's localization
  protocol (Selvaraju et al., 2017: 15 % of the max, then the largest connected segment).
* ``"minmax"`` (default ``0.5``): keep ``(m - min) / (max - min) >= t``, the normalisation and
  threshold that wsolevaluation's MaxBoxAcc sweeps (Choe et al., CVPR 2020).
* ``"percentile"`` (default ``70``): keep the top ``100 - q`` % of pixels -- the cut-off is the
  ``⌈(1 - q/100)·H·W⌉``-th largest value and ties with it are kept (the CSG paper's CAM protocol
  keeps the top 30 %).
* ``"otsu"``: Otsu's threshold (OpenCV ``cv2.threshold`` with ``THRESH_OTSU``) on the map
  min-max scaled to uint8; keep values above it. Takes no threshold.

A map with no foreground to speak of -- constant (including all zeros), or with ``max <= 0`` in
``max_fraction`` mode -- gives an empty mask, an all-zero box and ``valid = False``; it never
raises. Connected components use 8-connectivity (OpenCV ``connectedComponentsWithStats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou, masks_to_boxes

from .._utils import min_max

__all__ = [
    "THRESHOLD_MODES",
    "DEFAULT_THRESHOLDS",
    "COMPONENT_MODES",
    "BoxResult",
    "as_map_batch",
    "upsample_maps",
    "threshold_maps",
    "component_boxes",
    "boxes_from_masks",
    "boxes_from_maps",
    "all_component_boxes",
    "check_boxes",
    "paired_box_iou",
    "boxes_to_masks",
]

THRESHOLD_MODES: tuple[str, ...] = ("max_fraction", "minmax", "percentile", "otsu")
DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "max_fraction": 0.15,
    "minmax": 0.5,
    "percentile": 70.0,
    "otsu": None,
}
COMPONENT_MODES: tuple[str, ...] = ("largest", "union")


@dataclass
class BoxResult:
    """Boxes of a batch of maps.

    Attributes:
        boxes: float (N, 4), xyxy pixel-edge coordinates; all zeros where ``valid`` is False.
        valid: bool (N,); False for a map without foreground (empty or constant map).
        masks: bool (N, H, W), the thresholded maps the boxes were taken from.
    """

    boxes: Tensor
    valid: Tensor
    masks: Tensor


def as_map_batch(maps: Tensor | np.ndarray) -> Tensor:
    """Validate and reshape maps to a float batch (N, H, W).

    Accepts (H, W), (N, H, W) and (N, 1, H, W) -- the last is what Captum layer attributions
    return -- as a tensor or numpy array.

    Raises:
        ValueError: for another shape, an empty batch or non-finite values.
    """
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, Tensor):
        raise ValueError(f"maps must be a tensor or numpy array, got {type(maps).__name__}")
    maps = maps.detach()
    if maps.dim() == 2:
        maps = maps.unsqueeze(0)
    elif maps.dim() == 4:
        if maps.shape[1] != 1:
            raise ValueError(
                f"maps (N, C, H, W) must have one channel, got {tuple(maps.shape)}; sum over "
                "channels first (Captum: attr_dim_summation=True)"
            )
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ValueError(
            f"maps must be (H, W), (N, H, W) or (N, 1, H, W), got shape {tuple(maps.shape)}"
        )
    if maps.shape[0] == 0 or maps.shape[1] == 0 or maps.shape[2] == 0:
        raise ValueError(f"maps must not be empty, got shape {tuple(maps.shape)}")
    maps = maps.float()
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    return maps


def upsample_maps(maps: Tensor | np.ndarray, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling (``align_corners=False``, as the CSG reference) to ``size`` = (H, W).

    Args:
        maps: (h, w), (N, h, w) or (N, 1, h, w).
        size: the target (H, W), usually the image size.

    Returns:
        Float tensor (N, H, W).

    Example:
        >>> upsample_maps(torch.ones(2, 1, 4, 4), (16, 16)).shape
        torch.Size([2, 16, 16])
    """
    maps = as_map_batch(maps)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive sides, got {size}")
    if tuple(maps.shape[1:]) == size:
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


def _resolve_threshold(mode: str, threshold: float | None) -> float | None:
    if mode not in THRESHOLD_MODES:
        raise ValueError(
            f"unknown threshold mode {mode!r}; use one of {', '.join(THRESHOLD_MODES)}"
        )
    if mode == "otsu":
        if threshold is not None:
            raise ValueError("mode 'otsu' chooses its own threshold; pass threshold=None")
        return None
    if threshold is None:
        return DEFAULT_THRESHOLDS[mode]
    threshold = float(threshold)
    upper = 100.0 if mode == "percentile" else 1.0
    if not 0.0 <= threshold <= upper:
        raise ValueError(f"a {mode} threshold must lie in [0, {upper:g}], got {threshold}")
    return threshold


def threshold_maps(
    maps: Tensor | np.ndarray, threshold: float | None = None, mode: str = "max_fraction"
) -> tuple[Tensor, Tensor]:
    """Binarise each map (see the module docstring for the modes).

    Args:
        maps: (H, W), (N, H, W) or (N, 1, H, W).
        threshold: the mode's parameter (``None``: the mode's default, 0.15 / 0.5 / 70; must be
            ``None`` for ``"otsu"``).
        mode: one of :data:`THRESHOLD_MODES`.

    Returns:
        ``(masks, valid)``: bool (N, H, W) and bool (N,). A map without foreground (constant,
        or ``max <= 0`` for ``max_fraction``) gets an empty mask and ``valid = False``.

    Example:
        >>> m = torch.tensor([[0.0, 0.1, 1.0], [0.0, 0.2, 0.5]])
        >>> threshold_maps(m, 0.15)[0].int()
        tensor([[[0, 0, 1],
                 [0, 1, 1]]], dtype=torch.int32)
    """
    maps = as_map_batch(maps)
    threshold = _resolve_threshold(mode, threshold)
    flat = maps.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    valid = high > low
    if mode == "max_fraction":
        valid &= high > 0
        masks = maps >= (threshold * high)[:, None, None]
    elif mode == "minmax":
        masks = min_max(maps, start_dim=1) >= threshold
    elif mode == "percentile":
        count = flat.shape[1]
        k = min(count, max(1, math.ceil((1.0 - threshold / 100.0) * count - 1e-9)))
        cutoff = flat.topk(k, dim=1).values[:, -1]
        masks = maps >= cutoff[:, None, None]
    else:  # otsu
        masks = torch.zeros_like(maps, dtype=torch.bool)
        scaled = (min_max(maps, start_dim=1) * 255.0).round()
        scaled_np = scaled.to(torch.uint8).cpu().numpy()
        for index in torch.nonzero(valid).flatten().tolist():
            _, binary = cv2.threshold(scaled_np[index], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            masks[index] = torch.from_numpy(binary > 0)
    masks &= valid[:, None, None]
    valid &= masks.flatten(1).any(dim=1)
    return masks, valid


def component_boxes(mask: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Boxes of the 8-connected components of one binary mask, largest first.

    Uses OpenCV ``connectedComponentsWithStats``.

    Args:
        mask: bool/0-1 (H, W).

    Returns:
        ``(boxes, areas)``: float (M, 4) boxes in xyxy pixel-edge coordinates and long (M,)
        pixel counts, sorted by decreasing area (ties: the component met first in raster
        order). M = 0 for an empty mask.

    Example:
        >>> mask = torch.zeros(5, 6, dtype=torch.bool)
        >>> mask[0, 0] = True; mask[2:4, 3:6] = True
        >>> component_boxes(mask)
        (tensor([[3., 2., 6., 4.],
                [0., 0., 1., 1.]]), tensor([6, 1]))
    """
    array = mask.cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {array.shape}")
    count, _, stats, _ = cv2.connectedComponentsWithStats(
        array.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    stats = stats[1:]  # label 0 is the background
    if count <= 1:
        return torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.long)
    order = np.argsort(-stats[:, cv2.CC_STAT_AREA], kind="stable")
    stats = stats[order]
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    boxes = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)
    return torch.from_numpy(boxes), torch.from_numpy(stats[:, cv2.CC_STAT_AREA].astype(np.int64))


def boxes_from_masks(masks: Tensor, component: str = "largest") -> tuple[Tensor, Tensor]:
    """One box per binary mask: of its largest component, or around all foreground.

    Args:
        masks: bool (N, H, W).
        component: ``"largest"`` (the largest 8-connected component, OpenCV) or ``"union"``
            (the box around every foreground pixel, ``torchvision.ops.masks_to_boxes``).

    Returns:
        ``(boxes, valid)``: float (N, 4) xyxy pixel-edge boxes (zeros for an empty mask) and
        bool (N,) that is False for an empty mask.
    """
    if component not in COMPONENT_MODES:
        raise ValueError(
            f"unknown component {component!r}; use one of {', '.join(COMPONENT_MODES)}"
        )
    if masks.dim() != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(masks.shape)}")
    masks = masks.bool()
    valid = masks.flatten(1).any(dim=1)
    boxes = torch.zeros((masks.shape[0], 4))
    if component == "union":
        if valid.any():
            union = masks_to_boxes(masks[valid].cpu()).float()
            union[:, 2:] += 1.0  # last pixel index -> pixel edge
            boxes[valid] = union
        return boxes, valid
    for index in torch.nonzero(valid).flatten().tolist():
        boxes[index] = component_boxes(masks[index])[0][0]
    return boxes, valid


def boxes_from_maps(
    maps: Tensor | np.ndarray,
    threshold: float | None = None,
    mode: str = "max_fraction",
    component: str = "largest",
) -> BoxResult:
    """Threshold each map and box it (xyxy pixel-edge coordinates).

    Default: Grad-CAM's protocol -- keep pixels ``>= 0.15·max``, box the largest connected
    component.

    Args:
        maps: (H, W), (N, H, W) or (N, 1, H, W) at the resolution the boxes should have (usually
            the image size: see :func:`upsample_maps`).
        threshold: the mode's parameter (``None``: its default).
        mode: one of :data:`THRESHOLD_MODES`.
        component: ``"largest"`` or ``"union"`` (see :func:`boxes_from_masks`).

    Returns:
        :class:`BoxResult` with ``boxes`` (N, 4), ``valid`` (N,) and ``masks`` (N, H, W). An
        empty or constant map gives a zero box with ``valid = False``.

    Example:
        >>> m = torch.zeros(1, 8, 8)
        >>> m[0, 2:4, 5:8] = 1.0; m[0, 6, 0] = 0.5
        >>> boxes_from_maps(m).boxes
        tensor([[5., 2., 8., 4.]])
        >>> boxes_from_maps(torch.zeros(1, 8, 8)).valid
        tensor([False])
    """
    masks, valid = threshold_maps(maps, threshold, mode)
    boxes, _ = boxes_from_masks(masks, component)
    return BoxResult(boxes=boxes, valid=valid, masks=masks)


def all_component_boxes(
    maps: Tensor | np.ndarray, threshold: float | None = None, mode: str = "max_fraction"
) -> list[Tensor]:
    """The boxes of every connected component of every thresholded map.

    Args:
        maps: (H, W), (N, H, W) or (N, 1, H, W).
        threshold, mode: as in :func:`threshold_maps`.

    Returns:
        A list of N float tensors (M_i, 4), xyxy pixel-edge, largest component first; (0, 4)
        for a map without foreground.
    """
    masks, _ = threshold_maps(maps, threshold, mode)
    return [component_boxes(mask)[0] for mask in masks]


def check_boxes(
    boxes: Tensor | np.ndarray | Sequence[Sequence[float]],
    image_size: Sequence[int] | None = None,
    count: int | None = None,
    name: str = "boxes",
) -> Tensor:
    """Validate boxes in xyxy pixel-edge format; return them as float (N, 4).

    Args:
        boxes: (N, 4) or one box (4,).
        image_size: (H, W) of the maps or masks they belong to: every box must lie in
            ``[0, W] × [0, H]``.
        count: the expected N.
        name: what to call them in error messages.

    Raises:
        ValueError: wrong shape, non-finite values, ``x2 < x1`` or ``y2 < y1`` (not xyxy: convert
            xywh / cxcywh boxes with ``torchvision.ops.box_convert(boxes, in_fmt, "xyxy")``), a
            box outside the map (boxes and maps of mismatched sizes), or the wrong count.

    Example:
        >>> check_boxes([[0, 0, 4, 4]], image_size=(8, 8))
        tensor([[0., 0., 4., 4.]])
    """
    boxes = torch.as_tensor(np.asarray(boxes) if not isinstance(boxes, Tensor) else boxes)
    boxes = boxes.detach().float()
    if boxes.dim() == 1 and boxes.shape[0] == 4:
        boxes = boxes.unsqueeze(0)
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be (N, 4) in xyxy format, got shape {tuple(boxes.shape)}")
    if count is not None and boxes.shape[0] != count:
        raise ValueError(f"got {boxes.shape[0]} {name} for {count} maps; they must pair up")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        bad = int(torch.nonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))[0])
        raise ValueError(
            f"{name}[{bad}] = {boxes[bad].tolist()} is not xyxy (needs x1 <= x2 and y1 <= y2); "
            "convert xywh or cxcywh boxes with torchvision.ops.box_convert(boxes, in_fmt, 'xyxy')"
        )
    if image_size is not None:
        height, width = (int(s) for s in image_size)
        outside = (boxes[:, :2] < 0).any(dim=1) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
        if outside.any():
            bad = int(torch.nonzero(outside)[0])
            raise ValueError(
                f"{name}[{bad}] = {boxes[bad].tolist()} lies outside the {height}×{width} map: "
                "boxes and maps have mismatched sizes (upsample the maps to the image size with "
                "upsample_maps, or rescale the boxes)"
            )
    return boxes


def paired_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` (xyxy pixel-edge), via ``torchvision.ops.box_iou``.

    Two empty (zero-area) boxes have IoU 0.

    Args:
        boxes1, boxes2: float (N, 4).

    Returns:
        Float (N,).

    Example:
        >>> paired_box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 0., 3., 2.]]))
        tensor([0.3333])
    """
    boxes1, boxes2 = check_boxes(boxes1, name="boxes1"), check_boxes(boxes2, name="boxes2")
    if boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(f"cannot pair {boxes1.shape[0]} boxes with {boxes2.shape[0]}")
    out = torch.zeros(boxes1.shape[0])
    for start in range(0, boxes1.shape[0], 1024):
        stop = start + 1024
        out[start:stop] = box_iou(boxes1[start:stop], boxes2[start:stop]).diagonal()
    return torch.nan_to_num(out, nan=0.0)


def boxes_to_masks(boxes: Tensor, image_size: Sequence[int]) -> Tensor:
    """Fill xyxy pixel-edge boxes into bool masks (N, H, W); fractional edges are rounded."""
    boxes = check_boxes(boxes, image_size=image_size)
    height, width = (int(s) for s in image_size)
    ys = torch.arange(height).view(1, -1, 1)
    xs = torch.arange(width).view(1, 1, -1)
    b = boxes.round().long()
    return (
        (xs >= b[:, 0, None, None]) & (xs < b[:, 2, None, None])
        & (ys >= b[:, 1, None, None]) & (ys < b[:, 3, None, None])
    )  # fmt: skip
