"""Localization metrics for attribution maps: the CSG paper's mask IoU and the WSOL box metrics.

All maps must already be at the resolution of the ground truth (use
:func:`~csg_interp.attribution.boxes.upsample_maps`); boxes are **xyxy in pixel-edge
coordinates** (see :mod:`csg_interp.attribution.boxes`). Masks are bool (N, H, W).

* :func:`cam_mask_iou` -- the CSG paper's CAM protocol (``docs/method.md`` §6a): keep the top
  30 % of pixels, IoU with the object mask, a hit when IoU > 0.3.
* :func:`filter_thresholds` + :func:`filter_mask_iou` -- the paper's per-filter activation-map
  protocol (§6a (ii)): filter k is binarised at its dataset-level 70th percentile t_k, a hit when
  IoU > 0.3, every filter scored on its best class. t_k is computed from a whole activation
  tensor at once, so the reference's threshold-offset bug (its last, smaller batch overwrote
  earlier entries) cannot happen.
* :func:`box_localization` -- GT-known Loc (box IoU >= 0.5 with the ground-truth class's map) and
  Top-1 Loc (that, and the prediction is correct); :func:`gt_known_hits` gives the per-image hits.
* :func:`max_box_acc` -- MaxBoxAcc of wsolevaluation (Choe et al., *Evaluating Weakly Supervised
  Object Localization Methods Right*, CVPR 2020): min-max normalised maps, a sweep of thresholds,
  the best box accuracy over the sweep. ``version="v1"``: IoU 0.5, the largest component's box.
  ``version="v2"``: the mean over IoU 0.3 / 0.5 / 0.7 and the best box over all components.
* :func:`energy_pointing_game` -- Score-CAM's energy-based pointing game (Wang et al., CVPR-W
  2020): the share of the map's positive energy inside the object, plus the classic pointing
  game (is the maximum inside?).

Thresholds that are *chosen* (the operating point of GT-known Loc) must come from a validation
split: :func:`max_box_acc` on val returns ``best_threshold``; pass it to :func:`box_localization`
via :func:`~csg_interp.attribution.boxes.boxes_from_maps` on test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._utils import eval_mode, min_max
from ..progress import progress_bar
from ..training.gate import check_labels
from .boxes import (
    as_map_batch,
    boxes_from_maps,
    boxes_to_masks,
    check_boxes,
    paired_box_iou,
    threshold_maps,
    upsample_maps,
)

__all__ = [
    "MaskIoUResult",
    "FilterLocalizationResult",
    "BoxLocalizationResult",
    "MaxBoxAccResult",
    "PointingResult",
    "MAX_BOX_ACC_VERSIONS",
    "check_masks",
    "mask_iou",
    "cam_mask_iou",
    "filter_thresholds",
    "filter_mask_iou",
    "box_localization",
    "gt_known_hits",
    "max_box_acc",
    "max_box_acc_versions",
    "energy_pointing_game",
    "LOCALIZATION_METHODS",
    "localization_maps",
    "predict",
    "evaluate_maps",
    "gated_activations",
    "evaluate_filters",
]

#: wsolevaluation's two MaxBoxAcc versions: IoU thresholds and whether every component competes.
MAX_BOX_ACC_VERSIONS: dict[str, tuple[tuple[float, ...], bool]] = {
    "v1": ((0.5,), False),
    "v2": ((0.3, 0.5, 0.7), True),
}


def check_masks(
    masks: Tensor | np.ndarray, count: int | None = None, name: str = "masks"
) -> Tensor:
    """Validate ground-truth masks ((N, H, W) or (N, 1, H, W), bool or 0/1) as bool (N, H, W)."""
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(masks)
    if not isinstance(masks, Tensor):
        raise ValueError(f"{name} must be a tensor or numpy array, got {type(masks).__name__}")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ValueError(f"{name} must be (N, H, W), got shape {tuple(masks.shape)}")
    if masks.dtype != torch.bool:
        if ((masks != 0) & (masks != 1)).any():
            raise ValueError(f"{name} must be binary (bool or 0/1 values)")
        masks = masks.bool()
    if count is not None and masks.shape[0] != count:
        raise ValueError(f"got {masks.shape[0]} {name} for {count} maps; they must pair up")
    return masks


def _check_same_size(maps: Tensor, size: Sequence[int], what: str) -> None:
    if tuple(maps.shape[-2:]) != tuple(size):
        raise ValueError(
            f"maps are {tuple(maps.shape[-2:])} but the {what} are {tuple(size)}: maps and ground "
            "truth have mismatched sizes; upsample the maps first "
            "(csg_interp.attribution.upsample_maps(maps, image_size))"
        )


def mask_iou(predicted: Tensor, truth: Tensor) -> Tensor:
    """IoU of paired binary masks, (N,). An empty union gives 0.

    Example:
        >>> a = torch.tensor([[[1, 1, 0, 0]]], dtype=torch.bool)
        >>> b = torch.tensor([[[0, 1, 1, 0]]], dtype=torch.bool)
        >>> mask_iou(a, b)
        tensor([0.3333])
    """
    predicted, truth = check_masks(predicted, name="predicted masks"), check_masks(truth)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted masks {tuple(predicted.shape)} and masks {tuple(truth.shape)} differ in "
            "shape"
        )
    inter = (predicted & truth).flatten(1).sum(1).float()
    union = (predicted | truth).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union))


def _per_class(values: Tensor, labels: Tensor | None, num_classes: int | None) -> dict[int, float]:
    if labels is None:
        return {}
    num_classes = num_classes or int(labels.max()) + 1
    return {
        c: float(values[labels == c].float().mean())
        for c in range(num_classes)
        if bool((labels == c).any())
    }


@dataclass
class MaskIoUResult:
    """Per-image mask IoU and its summary.

    Attributes:
        iou: float (N,).
        hits: bool (N,), ``iou > iou_threshold`` (strict, as the paper).
        mean_iou: mean of ``iou``.
        hit_rate: mean of ``hits`` (the paper's "AP").
        iou_threshold: the hit threshold.
        per_class_iou, per_class_hit_rate: class → value, when labels were given.
    """

    iou: Tensor
    hits: Tensor
    mean_iou: float
    hit_rate: float
    iou_threshold: float
    per_class_iou: dict[int, float] = field(default_factory=dict)
    per_class_hit_rate: dict[int, float] = field(default_factory=dict)


def cam_mask_iou(
    maps: Tensor | np.ndarray,
    masks: Tensor | np.ndarray,
    top_fraction: float = 0.3,
    iou_threshold: float = 0.3,
    labels: Tensor | None = None,
    num_classes: int | None = None,
) -> MaskIoUResult:
    """The CSG paper's CAM localization: top-``top_fraction`` pixels vs the object mask.

    Each map is binarised at the value of its ``⌈top_fraction·H·W⌉``-th largest pixel (pixels
    ``>=`` it are kept, so ties may keep a few more), then compared with the object mask.

    Args:
        maps: (N, H, W) or (N, 1, H, W), at the masks' resolution.
        masks: bool (N, H, W) object masks.
        top_fraction: the share of pixels kept (paper: 0.3).
        iou_threshold: a hit when IoU > this (paper: 0.3).
        labels: optional (N,) classes for the per-class summary.
        num_classes: the number of classes (default: max label + 1).

    Returns:
        :class:`MaskIoUResult`.
    """
    maps = as_map_batch(maps)
    masks = check_masks(masks, count=maps.shape[0])
    _check_same_size(maps, masks.shape[1:], "masks")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must lie in (0, 1], got {top_fraction}")
    binary, _ = threshold_maps(maps, 100.0 * (1.0 - top_fraction), mode="percentile")
    iou = mask_iou(binary, masks)
    hits = iou > iou_threshold
    if labels is not None:
        num_classes = num_classes or int(torch.as_tensor(labels).max()) + 1
        labels = check_labels(labels, num_classes, maps.shape[0])
    return MaskIoUResult(
        iou=iou, hits=hits, mean_iou=float(iou.mean()), hit_rate=float(hits.float().mean()),
        iou_threshold=iou_threshold, per_class_iou=_per_class(iou, labels, num_classes),
        per_class_hit_rate=_per_class(hits, labels, num_classes),
    )  # fmt: skip


def filter_thresholds(activations: Tensor, percentile: float = 70.0) -> Tensor:
    """Per-filter dataset-level thresholds t_k of the paper's activation-map protocol.

    t_k is the ``⌈(1 - percentile/100)·n⌉``-th largest of filter k's ``n = N·h·w`` raw
    activations (at the layer's resolution, over every image and position). Compute it on the
    validation split and reuse it on test.

    Args:
        activations: the gated layer's output A (N, K, h, w).
        percentile: 70 in the paper (the top 30 % of activations lie above t_k).

    Returns:
        Float (K,).

    Example:
        >>> a = torch.arange(10.0).view(10, 1, 1, 1)
        >>> filter_thresholds(a)
        tensor([7.])
    """
    if activations.dim() != 4:
        raise ValueError(f"activations must be (N, K, h, w), got shape {tuple(activations.shape)}")
    if not 0.0 <= percentile < 100.0:
        raise ValueError(f"percentile must lie in [0, 100), got {percentile}")
    per_filter = activations.detach().float().transpose(0, 1).flatten(1)  # (K, N·h·w)
    count = per_filter.shape[1]
    k = min(count, max(1, int(np.ceil((1.0 - percentile / 100.0) * count - 1e-9))))
    # the k-th largest is the (count - k + 1)-th smallest
    return per_filter.kthvalue(count - k + 1, dim=1).values


@dataclass
class FilterLocalizationResult:
    """The per-filter activation-map protocol's results (``docs/method.md`` §6a).

    Attributes:
        iou: float (N, K), IoU of every filter's binarised map with every image's object mask.
        success: float (K, C), hit rate (IoU > threshold) of filter k on the images of class c
            (NaN for a class without images).
        related_class: long (K,), ``argmax_c success[k, c]``.
        filter_score: float (K,), ``max_c success[k, c]``.
        filter_iou: float (K,), mean IoU of filter k on its related class's images.
        ap: mean of ``filter_score`` (the paper's "AP").
        mean_iou: mean of ``filter_iou``.
        rfn: long (C,), the number of filters related to each class.
        per_class_ap, per_class_iou: class → mean over its related filters (classes without a
            related filter are left out).
    """

    iou: Tensor
    success: Tensor
    related_class: Tensor
    filter_score: Tensor
    filter_iou: Tensor
    ap: float
    mean_iou: float
    rfn: Tensor
    per_class_ap: dict[int, float]
    per_class_iou: dict[int, float]


def filter_mask_iou(
    activations: Tensor,
    masks: Tensor | np.ndarray,
    labels: Tensor,
    num_classes: int,
    thresholds: Tensor | None = None,
    iou_threshold: float = 0.3,
    chunk_size: int = 32,
) -> FilterLocalizationResult:
    """The paper's per-filter activation-map localization (``docs/method.md`` §6a).

    Filter k's map A_k is upsampled bilinearly (``align_corners=False``) to the masks' size and
    binarised at ``>= t_k``; a hit when its IoU with the object mask is ``> iou_threshold``.
    A filter that never fires has t_k = 0 and a whole-image mask (as in the reference).

    Args:
        activations: A (N, K, h, w) of the evaluated images.
        masks: bool (N, H, W) object masks.
        labels: (N,) ground-truth classes.
        num_classes: C.
        thresholds: (K,) t_k from :func:`filter_thresholds` on the validation split; ``None``
            computes them from ``activations`` (what the reference does on test).
        iou_threshold: 0.3 in the paper.
        chunk_size: images upsampled at a time (memory: chunk·K·H·W floats).

    Returns:
        :class:`FilterLocalizationResult`.
    """
    if activations.dim() != 4:
        raise ValueError(f"activations must be (N, K, h, w), got shape {tuple(activations.shape)}")
    count, num_filters = activations.shape[:2]
    masks = check_masks(masks, count=count)
    labels = check_labels(labels, num_classes, count)
    if thresholds is None:
        thresholds = filter_thresholds(activations)
    thresholds = torch.as_tensor(thresholds, dtype=torch.float32).flatten()
    if thresholds.shape[0] != num_filters:
        raise ValueError(f"got {thresholds.shape[0]} thresholds for {num_filters} filters")
    size = tuple(masks.shape[1:])
    iou = torch.zeros(count, num_filters)
    for start in range(0, count, chunk_size):
        chunk = activations[start : start + chunk_size].detach().float()
        up = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False)
        binary = up >= thresholds.view(1, -1, 1, 1)
        truth = masks[start : start + chunk_size, None]
        inter = (binary & truth).flatten(2).sum(2).float()
        union = (binary | truth).flatten(2).sum(2).float()
        iou[start : start + chunk_size] = torch.where(union > 0, inter / union.clamp_min(1), 0.0)
    hits = (iou > iou_threshold).float()
    success = torch.full((num_filters, num_classes), float("nan"))
    class_iou = torch.full((num_filters, num_classes), float("nan"))
    for c in range(num_classes):
        members = labels == c
        if members.any():
            success[:, c] = hits[members].mean(0)
            class_iou[:, c] = iou[members].mean(0)
    filled = torch.nan_to_num(success, nan=-1.0)
    filter_score, related = filled.max(dim=1)
    filter_iou = class_iou.gather(1, related[:, None])[:, 0]
    rfn = torch.bincount(related, minlength=num_classes)
    present = [c for c in range(num_classes) if rfn[c]]
    per_class_ap = {c: float(filter_score[related == c].mean()) for c in present}
    per_class_iou = {c: float(filter_iou[related == c].mean()) for c in present}
    return FilterLocalizationResult(
        iou=iou, success=success, related_class=related, filter_score=filter_score,
        filter_iou=filter_iou, ap=float(filter_score.mean()), mean_iou=float(filter_iou.mean()),
        rfn=rfn, per_class_ap=per_class_ap, per_class_iou=per_class_iou,
    )  # fmt: skip


@dataclass
class BoxLocalizationResult:
    """Box localization of one operating point.

    Attributes:
        iou: float (N,) box IoU (0 where no box was found).
        valid: bool (N,), a box was found.
        gt_known_loc: share of images with IoU >= ``iou_threshold``.
        top1_loc: share with IoU >= threshold **and** a correct prediction (``None`` without
            predictions).
        top1_cls: classification accuracy (``None`` without predictions).
        iou_threshold: 0.5 by convention.
    """

    iou: Tensor
    valid: Tensor
    gt_known_loc: float
    top1_loc: float | None
    top1_cls: float | None
    iou_threshold: float


def box_localization(
    boxes: Tensor,
    gt_boxes: Tensor,
    valid: Tensor | None = None,
    predictions: Tensor | None = None,
    labels: Tensor | None = None,
    iou_threshold: float = 0.5,
    image_size: Sequence[int] | None = None,
) -> BoxLocalizationResult:
    """GT-known Loc and Top-1 Loc from predicted and true boxes (xyxy pixel-edge).

    The predicted boxes must come from the maps of the **ground-truth** class. GT-known Loc
    counts IoU >= ``iou_threshold``; Top-1 Loc also requires ``predictions == labels`` (for a
    correct prediction the ground-truth class's map is the predicted class's map).

    Args:
        boxes: (N, 4) predicted boxes.
        gt_boxes: (N, 4) true boxes.
        valid: bool (N,) from :func:`~csg_interp.attribution.boxes.boxes_from_maps`; an invalid
            box counts as a miss.
        predictions, labels: (N,) predicted and true classes, for Top-1 Loc (both or neither).
        iou_threshold: 0.5 by convention.
        image_size: (H, W) to check that every box lies inside the image.

    Returns:
        :class:`BoxLocalizationResult`.

    Example:
        >>> gt = torch.tensor([[0., 0., 4., 4.], [0., 0., 4., 4.]])
        >>> pred = torch.tensor([[0., 0., 4., 2.], [0., 0., 2., 2.]])
        >>> box_localization(pred, gt).gt_known_loc
        0.5
    """
    gt_boxes = check_boxes(gt_boxes, image_size=image_size, name="gt_boxes")
    boxes = check_boxes(boxes, image_size=image_size, count=gt_boxes.shape[0])
    if valid is None:
        valid = torch.ones(boxes.shape[0], dtype=torch.bool)
    valid = torch.as_tensor(valid, dtype=torch.bool)
    if valid.shape != (boxes.shape[0],):
        raise ValueError(f"valid must be (N,) = ({boxes.shape[0]},), got {tuple(valid.shape)}")
    iou = paired_box_iou(boxes, gt_boxes) * valid
    hits = iou >= iou_threshold
    top1_loc = top1_cls = None
    if (predictions is None) != (labels is None):
        raise ValueError("Top-1 Loc needs both predictions and labels (or neither)")
    if predictions is not None:
        predictions, labels = torch.as_tensor(predictions), torch.as_tensor(labels)
        if predictions.shape != (boxes.shape[0],) or labels.shape != (boxes.shape[0],):
            raise ValueError(f"predictions and labels must be (N,) = ({boxes.shape[0]},)")
        correct = predictions.long() == labels.long()
        top1_cls = float(correct.float().mean())
        top1_loc = float((correct & hits).float().mean())
    return BoxLocalizationResult(
        iou=iou, valid=valid, gt_known_loc=float(hits.float().mean()), top1_loc=top1_loc,
        top1_cls=top1_cls, iou_threshold=iou_threshold,
    )  # fmt: skip


def gt_known_hits(
    maps: Tensor, gt_boxes: Tensor, threshold: float, iou_threshold: float = 0.5
) -> Tensor:
    """Per-image GT-known hits of ground-truth-class maps at one min-max threshold.

    The per-image form of :func:`box_localization`'s ``gt_known_loc`` (its mean), for paired
    comparisons of two methods on the same images
    (:func:`csg_interp.metrics.paired_bootstrap_interval`).

    Args:
        maps: (N, H, W) maps of the ground-truth class at image resolution.
        gt_boxes: (N, 4) true boxes, xyxy pixel-edge.
        threshold: the min-max threshold (chosen on val, e.g. ``evaluate_maps(...)["threshold"]``).
        iou_threshold: 0.5 by convention.

    Returns:
        Bool (N,): a box was found and its IoU with the true box is >= ``iou_threshold``.

    Example:
        >>> maps = torch.zeros(2, 4, 4)
        >>> maps[0, :2, :2] = 1.0
        >>> maps[1, 2:, 2:] = 1.0
        >>> gt_known_hits(maps, torch.tensor([[0., 0., 2., 2.]] * 2), 0.5).tolist()
        [True, False]
    """
    found = boxes_from_maps(maps, threshold, mode="minmax")
    result = box_localization(found.boxes, gt_boxes, valid=found.valid, iou_threshold=iou_threshold)
    return result.iou >= iou_threshold


@dataclass
class MaxBoxAccResult:
    """MaxBoxAcc over a threshold sweep (wsolevaluation).

    Attributes:
        version: ``"v1"`` or ``"v2"``.
        thresholds: float (T,), the swept thresholds on min-max normalised maps.
        iou_thresholds: the box-IoU thresholds.
        accuracy: float (T, len(iou_thresholds)), box accuracy at every threshold.
        best_threshold: per IoU threshold, the map threshold with the highest accuracy (the
            first one on ties) -- the operating point to carry from val to test.
        max_box_acc: mean over IoU thresholds of the best accuracy.
    """

    version: str
    thresholds: Tensor
    iou_thresholds: tuple[float, ...]
    accuracy: Tensor
    best_threshold: dict[float, float]
    max_box_acc: float


def _sweep_ious(
    maps: Tensor, gt_boxes: Tensor, thresholds: Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Box IoUs over a threshold sweep of min-max normalised maps, in one pass.

    Returns ``(largest, best)``, both (T, N): the IoU of the largest component's box and the
    best IoU over all components' boxes (0 where nothing is kept). Boxes are xyxy pixel-edge,
    components 8-connected (OpenCV), ties in area go to the lower label (raster order).
    """
    flat = maps.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    valid = (high > low).numpy()
    normalised = min_max(maps, start_dim=1).numpy()
    gt = gt_boxes.numpy().astype(np.float64)
    gt_area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    largest = np.zeros((len(thresholds), maps.shape[0]))
    best = np.zeros_like(largest)
    sweep = progress_bar(thresholds.tolist(), desc="box threshold sweep", unit="threshold")
    for row, t in enumerate(sweep):
        binary = (normalised >= t).astype(np.uint8)
        for index in np.flatnonzero(valid):
            count, _, stats, _ = cv2.connectedComponentsWithStats(binary[index], connectivity=8)
            if count <= 1:
                continue
            stats = stats[1:].astype(np.float64)
            x1, y1 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
            x2, y2 = x1 + stats[:, cv2.CC_STAT_WIDTH], y1 + stats[:, cv2.CC_STAT_HEIGHT]
            g = gt[index]
            inter = np.clip(np.minimum(x2, g[2]) - np.maximum(x1, g[0]), 0, None) * np.clip(
                np.minimum(y2, g[3]) - np.maximum(y1, g[1]), 0, None
            )
            union = (x2 - x1) * (y2 - y1) + gt_area[index] - inter
            ious = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
            largest[row, index] = ious[np.argmax(stats[:, cv2.CC_STAT_AREA])]
            best[row, index] = ious.max()
    return largest, best


def max_box_acc(
    maps: Tensor | np.ndarray,
    gt_boxes: Tensor,
    version: str = "v2",
    thresholds: Sequence[float] | Tensor | None = None,
) -> MaxBoxAccResult:
    """MaxBoxAcc of Choe et al. (CVPR 2020, github.com/clovaai/wsolevaluation).

    Each map is min-max normalised; for every threshold t of the sweep (default ``0, 0.01, ...,
    0.99``, wsolevaluation's ``cam_curve_interval = 0.01``) pixels ``>= t`` are kept and boxed by
    connected component (8-connectivity). ``v1``: the largest component's box, accuracy =
    share of IoU >= 0.5, MaxBoxAcc = its best value over t. ``v2``: every component's box
    competes (the best IoU counts, wsolevaluation's ``multi_contour_eval``) and MaxBoxAcc is
    the mean of the best accuracies at IoU 0.3, 0.5 and 0.7. Differences from wsolevaluation:
    components instead of OpenCV contours, and ``>= t`` instead of ``> int(255·t)`` on uint8.
    A constant map keeps nothing (a miss at every threshold).

    Args:
        maps: (N, H, W) or (N, 1, H, W) at the boxes' resolution (one box per image).
        gt_boxes: (N, 4) true boxes, xyxy pixel-edge.
        version: ``"v1"`` or ``"v2"``.
        thresholds: the sweep (values in [0, 1]).

    Returns:
        :class:`MaxBoxAccResult`.
    """
    return max_box_acc_versions(maps, gt_boxes, (version,), thresholds)[version]


def max_box_acc_versions(
    maps: Tensor | np.ndarray,
    gt_boxes: Tensor,
    versions: Sequence[str] = ("v1", "v2"),
    thresholds: Sequence[float] | Tensor | None = None,
) -> dict[str, MaxBoxAccResult]:
    """:func:`max_box_acc` for several versions from one sweep (the costly part is shared)."""
    for version in versions:
        if version not in MAX_BOX_ACC_VERSIONS:
            raise ValueError(f"unknown MaxBoxAcc version {version!r}; use 'v1' or 'v2'")
    maps = as_map_batch(maps)
    gt_boxes = check_boxes(
        gt_boxes, image_size=maps.shape[1:], count=maps.shape[0], name="gt_boxes"
    )
    if thresholds is None:
        thresholds = torch.arange(100, dtype=torch.float64) / 100.0
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
    if thresholds.numel() == 0 or (thresholds < 0).any() or (thresholds > 1).any():
        raise ValueError("thresholds must be a non-empty sweep of values in [0, 1]")
    largest, best = _sweep_ious(maps, gt_boxes, thresholds)
    results = {}
    for version in versions:
        iou_thresholds, multi = MAX_BOX_ACC_VERSIONS[version]
        ious = torch.from_numpy(best if multi else largest)
        accuracy = torch.stack([(ious >= t).float().mean(dim=1) for t in iou_thresholds], dim=1)
        best_rows = accuracy.argmax(dim=0)  # first maximum
        chosen = {t: float(thresholds[best_rows[c]]) for c, t in enumerate(iou_thresholds)}
        results[version] = MaxBoxAccResult(
            version=version, thresholds=thresholds, iou_thresholds=iou_thresholds,
            accuracy=accuracy, best_threshold=chosen,
            max_box_acc=float(accuracy.max(dim=0).values.mean()),
        )  # fmt: skip
    return results


@dataclass
class PointingResult:
    """Energy-based and classic pointing game.

    Attributes:
        energy: float (N,), share of the map's positive energy inside the object (0 where the
            map has no positive value; see ``valid``).
        hits: bool (N,), the map's maximum lies inside the object.
        valid: bool (N,), the map has positive energy.
        mean_energy: mean of ``energy``.
        hit_rate: mean of ``hits``.
    """

    energy: Tensor
    hits: Tensor
    valid: Tensor
    mean_energy: float
    hit_rate: float


def energy_pointing_game(
    maps: Tensor | np.ndarray,
    masks: Tensor | np.ndarray | None = None,
    boxes: Tensor | None = None,
) -> PointingResult:
    """Energy-based pointing game (Score-CAM, Wang et al., 2020) and the classic pointing game.

    ``energy = Σ_{p ∈ object} relu(m_p) / Σ_p relu(m_p)``; the object is the mask, or the box
    (xyxy pixel-edge) as in Score-CAM. Negative map values carry no energy. A map with no
    positive value scores 0 and is flagged ``valid = False``. The classic game hits when the
    map's maximum (the first one in raster order) lies inside the object.

    Args:
        maps: (N, H, W) or (N, 1, H, W) at the ground truth's resolution.
        masks: bool (N, H, W) object masks, or
        boxes: (N, 4) object boxes (exactly one of the two).

    Returns:
        :class:`PointingResult`.

    Example:
        >>> m = torch.tensor([[[3.0, 1.0], [0.0, -2.0]]])
        >>> energy_pointing_game(m, masks=torch.tensor([[[True, False], [False, False]]])).energy
        tensor([0.7500])
    """
    maps = as_map_batch(maps)
    if (masks is None) == (boxes is None):
        raise ValueError("pass the object as masks or as boxes (exactly one)")
    if masks is None:
        region = boxes_to_masks(
            check_boxes(boxes, image_size=maps.shape[1:], count=maps.shape[0]), maps.shape[1:]
        )
    else:
        region = check_masks(masks, count=maps.shape[0])
        _check_same_size(maps, region.shape[1:], "masks")
    positive = maps.clamp_min(0)
    total = positive.flatten(1).sum(1)
    inside = (positive * region).flatten(1).sum(1)
    valid = total > 0
    energy = torch.where(valid, inside / total.clamp_min(1e-30), torch.zeros_like(total))
    peak = maps.flatten(1).argmax(dim=1)
    hits = region.flatten(1).gather(1, peak[:, None])[:, 0]
    return PointingResult(
        energy=energy, hits=hits, valid=valid, mean_energy=float(energy.mean()),
        hit_rate=float(hits.float().mean()),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Maps of a network and the evaluation protocol (what ``csg-interp localize`` and the benchmark run)
# ---------------------------------------------------------------------------------------------

#: Map methods: ``csg`` -- the gate-weighted CAM ``Σ_k G[c,k]·W[c,k]·A_k`` of
#: :class:`~csg_interp.attribution.CSGAttribution` (needs a gate); ``cam`` -- CAM
#: ``Σ_k W[c,k]·A_k`` (Zhou et al., 2016); ``gradcam`` -- Captum ``LayerGradCam`` with ReLU;
#: ``gradcam++`` -- pytorch-grad-cam's ``GradCAMPlusPlus`` (the ``bench`` extra).
LOCALIZATION_METHODS: tuple[str, ...] = ("csg", "cam", "gradcam", "gradcam++")


def localization_maps(
    net: torch.nn.Module,
    images: Tensor,
    targets: Tensor,
    method: str,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    cam_class: type | None = None,
) -> Tensor:
    """Class maps of ``targets`` at the images' resolution, (N, H, W), for one method.

    Layer-resolution maps are upsampled bilinearly (``align_corners=False``); pytorch-grad-cam
    returns its maps already resized (OpenCV bilinear) and min-max scaled per image, and its
    hooks are released before this function returns (also after an error).

    Args:
        net: a :class:`~csg_interp.training.CSGNet` (``gated_layer`` is the layer every method
            explains); it runs in eval mode and its mode and device are restored afterwards.
        images: float (N, C, H, W) in [0, 1].
        targets: long (N,) classes to explain (the ground truth for GT-known Loc).
        method: one of :data:`LOCALIZATION_METHODS`.
        batch_size: images per forward pass.
        device: where to run.
        cam_class: for ``gradcam++`` only, the pytorch-grad-cam class to build instead of
            ``GradCAMPlusPlus`` (constructed as ``cam_class(model=net, target_layers=[layer])``),
            e.g. a subclass whose ``get_cam_weights`` reweights the filters.

    Returns:
        Float (N, H, W) on the CPU.

    Raises:
        ValueError: unknown method; ``csg`` on a model without a gate; ``gradcam++`` without
            the ``grad-cam`` package; ``cam_class`` with another method.
    """
    from captum.attr import LayerGradCam

    from .csg_attribution import CSGAttribution

    if method not in LOCALIZATION_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(LOCALIZATION_METHODS)}")
    if cam_class is not None and method != "gradcam++":
        raise ValueError(
            f"cam_class replaces the class of method 'gradcam++' only; got method {method!r}"
        )
    targets = check_labels(targets, net.num_classes, images.shape[0])
    if method == "csg" and net.gate is None:
        raise ValueError(
            "method 'csg' explains through the learned gate and needs a CSG model; use 'cam' "
            "for an STD model (or CSGAttribution with gate=gate_from_mi(...))"
        )
    with eval_mode(net, device) as device:
        size = tuple(images.shape[-2:])
        if method == "csg":
            explainer: object = CSGAttribution.from_net(net)
        elif method == "cam":
            ones = torch.ones(net.num_classes, net.num_filters, device=device)
            explainer = CSGAttribution(net, net.gated_layer, ones, mode="cam")
        elif method == "gradcam":
            explainer = LayerGradCam(net, net.gated_layer)
        else:
            try:
                from pytorch_grad_cam import GradCAMPlusPlus
                from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
            except ImportError as error:  # pragma: no cover - the bench extra is installed in CI
                raise ValueError(
                    "method 'gradcam++' needs pytorch-grad-cam: pip install 'csg_interp[bench]'"
                ) from error
            explainer = (cam_class or GradCAMPlusPlus)(model=net, target_layers=[net.gated_layer])
        out = torch.zeros(images.shape[0], *size)
        batches = progress_bar(range(0, images.shape[0], batch_size), desc=f"{method} maps",
                               unit="batch")  # fmt: skip
        try:
            for start in batches:
                x = images[start : start + batch_size].to(device)
                y = targets[start : start + batch_size].to(device)
                if method == "gradcam++":
                    wanted = [ClassifierOutputTarget(int(c)) for c in y]
                    cams = explainer(input_tensor=x, targets=wanted)
                    maps = torch.from_numpy(np.asarray(cams, dtype=np.float32))
                elif method == "gradcam":
                    maps = explainer.attribute(x, target=y, relu_attributions=True).detach()
                else:
                    with torch.no_grad():
                        maps = explainer.attribute(x, target=y)
                out[start : start + batch_size] = upsample_maps(maps.cpu(), size)
        finally:
            if method == "gradcam++":
                explainer.activations_and_grads.release()
        return out


@torch.no_grad()
def predict(
    net: torch.nn.Module,
    images: Tensor,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Predicted classes (argmax of the STD logits ``net(x)``), long (N,) on the CPU."""
    with eval_mode(net, device) as device:
        chunks = [
            net(images[start : start + batch_size].to(device)).argmax(dim=1).cpu()
            for start in range(0, images.shape[0], batch_size)
        ]
    return torch.cat(chunks)


def evaluate_maps(
    val_maps: Tensor,
    val_boxes: Tensor,
    test_maps: Tensor,
    test_boxes: Tensor,
    test_masks: Tensor,
    test_labels: Tensor | None = None,
    test_predictions: Tensor | None = None,
    thresholds: Sequence[float] | Tensor | None = None,
) -> dict[str, float]:
    """The full protocol for one method's ground-truth-class maps; thresholds chosen on val.

    * ``threshold``: the min-max threshold with the best box accuracy (IoU >= 0.5, largest
      component) on **val** -- MaxBoxAcc v1's argmax there;
    * ``gt_known_loc`` / ``top1_loc`` / ``top1_cls``: on **test** at that threshold;
    * ``gt_known_loc_gradcam15``: on test with Grad-CAM's fixed protocol (15 % of the max, the
      largest component), which chooses nothing;
    * ``max_box_acc_v1`` / ``max_box_acc_v2``: wsolevaluation's MaxBoxAcc on test (a maximum
      over the threshold sweep by definition);
    * ``mask_iou`` / ``mask_hit_rate``: the CSG paper's CAM protocol (top 30 %, IoU > 0.3) on test;
    * ``energy_pointing`` / ``pointing_hit_rate``: the energy-based and classic pointing game on
      the test masks.

    Args:
        val_maps, test_maps: (N, H, W) maps of the ground-truth class at image resolution.
        val_boxes, test_boxes: (N, 4) true boxes, xyxy pixel-edge.
        test_masks: bool (N, H, W) object masks.
        test_labels, test_predictions: (N,) for Top-1 Loc (optional).
        thresholds: the min-max sweep (default ``0, 0.01, ..., 0.99``).

    Returns:
        A JSON-ready dict of floats.
    """
    operating = max_box_acc(val_maps, val_boxes, "v1", thresholds).best_threshold[0.5]
    at_operating = boxes_from_maps(test_maps, operating, mode="minmax")
    loc = box_localization(
        at_operating.boxes, test_boxes, valid=at_operating.valid, predictions=test_predictions,
        labels=test_labels,
    )  # fmt: skip
    fixed = boxes_from_maps(test_maps, 0.15, mode="max_fraction")
    masks = cam_mask_iou(test_maps, test_masks)
    sweeps = max_box_acc_versions(test_maps, test_boxes, thresholds=thresholds)
    pointing = energy_pointing_game(test_maps, masks=test_masks)
    result = {
        "threshold": operating,
        "gt_known_loc": loc.gt_known_loc,
        "gt_known_loc_gradcam15": box_localization(
            fixed.boxes, test_boxes, fixed.valid
        ).gt_known_loc,
        "max_box_acc_v1": sweeps["v1"].max_box_acc,
        "max_box_acc_v2": sweeps["v2"].max_box_acc,
        "mask_iou": masks.mean_iou,
        "mask_hit_rate": masks.hit_rate,
        "energy_pointing": pointing.mean_energy,
        "pointing_hit_rate": pointing.hit_rate,
        "no_box_rate": float((~at_operating.valid).float().mean()),
    }
    if loc.top1_loc is not None:
        result["top1_loc"] = loc.top1_loc
        result["top1_cls"] = float(loc.top1_cls)
    return result


@torch.no_grad()
def gated_activations(
    net: torch.nn.Module, images: Tensor, batch_size: int = 256, device: str | torch.device = "cpu"
) -> Tensor:
    """The gated layer's output A (N, K, h, w) on the CPU (the gate itself is not applied)."""
    with eval_mode(net, device) as device:
        return torch.cat(
            [
                net.forward_features(images[start : start + batch_size].to(device)).cpu()
                for start in range(0, images.shape[0], batch_size)
            ]
        )


def evaluate_filters(
    net: torch.nn.Module,
    val_images: Tensor,
    test_images: Tensor,
    test_masks: Tensor,
    test_labels: Tensor,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> dict[str, object]:
    """The paper's per-filter protocol with t_k from **val** activations, scored on test."""
    thresholds = filter_thresholds(gated_activations(net, val_images, batch_size, device))
    result = filter_mask_iou(
        gated_activations(net, test_images, batch_size, device), test_masks, test_labels,
        net.num_classes, thresholds=thresholds,
    )  # fmt: skip
    return {
        "filter_ap": result.ap,
        "filter_iou": result.mean_iou,
        "rfn": result.rfn.tolist(),
    }
