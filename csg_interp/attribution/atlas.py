"""The filter atlas: for every filter of the gated layer, the images and regions it fires on.

Interpretability research looks at a unit through its *dataset examples*: the images that
activate it most and the region where it fires (Network Dissection, Bau et al., CVPR 2017;
Olah et al., *Feature Visualization*, Distill 2017). :func:`filter_atlas` collects them for every
filter k of a :class:`~csg_interp.training.CSGNet` in **one no-grad pass** over a data set and
puts next to them what the toolkit knows about the filter: its gate column ``G[:, k]`` (the class
the gate assigned it), its mutual-information column ``M[:, k]`` (the class it is most
informative about) and, where the data set has object masks, its localization score under the
CSG paper's per-filter protocol (``docs/localization.md``).

Definitions (the documented contract, checked by the tests):

* **score** of image i for filter k: its pooled activation ``mean_hw A_k(x_i)`` -- the
  global-average-pooled value every MI figure reads (``csg_interp.metrics.extract_features``).
* **top-k**: the ``top_k`` images with the largest score, in decreasing order, ties to the lower
  data-set index -- exactly a stable descending sort of all N scores, computed by a streaming
  merge that keeps only K·top_k candidates (the state kept does not grow with N).
* **peak**: the arg-max cell (row, col) of ``A_k(x_i)`` at the layer's resolution (the first one
  in raster order).
* **region**: the pixels where the bilinearly upsampled map (``align_corners=False``) is
  ``>= t_k``, the filter's dataset-level threshold
  (:func:`~csg_interp.attribution.filter_thresholds`, computed beforehand on a validation
  split); **box** is the xyxy pixel-edge box of its largest 8-connected component.
* **filters that serve class c**: by the gate, the filters with ``G[c, k] >= min_gate``
  (as :meth:`~csg_interp.training.ClassSpecificGate.filters_of`); by MI, the filters whose
  ``argmax_c M[c, k]`` is c (as :class:`~csg_interp.metrics.FilterTable`). Both are ordered by
  decreasing weight (``G[c, k]`` or ``M[c, k]``), ties to the lower filter index.

The thresholds, the MI matrix and, for an STD model, the gate (``gate_from_mi(M)``) are inputs:
they come from a validation split and the run's metrics, not from the pass itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..metrics.features import _as_dataset
from ..training.gate import ClassSpecificGate, class_filters
from .boxes import boxes_from_masks, upsample_maps
from .localization import check_masks, filter_mask_iou

__all__ = ["FilterAtlas", "filter_atlas", "ATLAS_SCHEMA"]

#: Version of :meth:`FilterAtlas.to_dict`'s layout (``atlas.json``).
ATLAS_SCHEMA = 1


def _matrix(value: Any, name: str, num_classes: int, num_filters: int) -> Tensor | None:
    if value is None:
        return None
    if isinstance(value, ClassSpecificGate):
        value = value.weight
    matrix = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, Tensor)
                                        else value), dtype=torch.float32)  # fmt: skip
    if matrix.dim() != 2 or tuple(matrix.shape) != (num_classes, num_filters):
        raise ValueError(
            f"{name} must be a C×K matrix with C = {num_classes} classes and K = {num_filters} "
            f"filters (the layer's channels), got shape {tuple(matrix.shape)}"
        )
    return matrix


@dataclass
class FilterAtlas:
    """The atlas of one network on one data set (see the module docstring for the definitions).

    K filters, ``k = top_k`` examples each; entries past the data set's size are padded
    (``indices == -1``, score NaN).

    Attributes:
        indices: long (K, k), data-set indices of each filter's top images, best first.
        scores: float (K, k), their pooled activations.
        labels: long (K, k), their true classes (-1 when the data set has no labels).
        predictions: long (K, k), the network's predicted classes for them.
        peaks: long (K, k, 2), the arg-max cell (row, col) of the filter's map.
        boxes: float (K, k, 4), the region's box (xyxy pixel-edge, image resolution; zeros and
            ``region_fraction == 0`` where the region is empty).
        region_fraction: float (K, k), the share of the image's pixels in the region.
        maps: float (K, k, h, w), the filter's map on each top image (for figures; not saved).
        thresholds: float (K,), t_k.
        gate: float (C, K) or ``None``.
        mi: float (C, K) MI matrix or ``None``.
        class_names: one name per class.
        image_size, layer_size: (H, W) and (h, w).
        num_images: N, the images of the pass.
        min_gate: the gate value from which a filter serves a class.
        localization: per-filter localization (``None`` without masks): ``filter_score``
            (K,) hit rate on the filter's best class (its AP term), ``related_class`` (K,),
            ``filter_iou`` (K,), ``ap`` (their mean) and ``iou_threshold``.
        info: free-form provenance (where thresholds, gate and MI came from).
    """

    indices: Tensor
    scores: Tensor
    labels: Tensor
    predictions: Tensor
    peaks: Tensor
    boxes: Tensor
    region_fraction: Tensor
    maps: Tensor
    thresholds: Tensor
    gate: Tensor | None
    mi: Tensor | None
    class_names: list[str]
    image_size: tuple[int, int]
    layer_size: tuple[int, int]
    num_images: int
    min_gate: float = 0.5
    localization: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_filters(self) -> int:
        return int(self.indices.shape[0])

    @property
    def top_k(self) -> int:
        return int(self.indices.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def filters_of(self, cls: int, by: str = "gate") -> list[int]:
        """The filters that serve class ``cls``, by ``"gate"`` or ``"mi"``, strongest first.

        Raises:
            ValueError: unknown ``by``, a class out of range, or no gate / MI matrix in the atlas.
        """
        if by not in ("gate", "mi"):
            raise ValueError(f"by must be 'gate' or 'mi', got {by!r}")
        matrix = self.gate if by == "gate" else self.mi
        if matrix is None:
            raise ValueError(
                f"this atlas has no {'gate' if by == 'gate' else 'MI matrix'}; pass "
                f"{'gate=' if by == 'gate' else 'mi='} to filter_atlas"
            )
        if not 0 <= int(cls) < matrix.shape[0]:
            raise ValueError(f"class {cls} is out of range [0, {matrix.shape[0]})")
        min_value = self.min_gate if by == "gate" else None  # by MI: the argmax rule
        return [int(k) for k in class_filters(matrix, int(cls), min_value)]

    def assigned_class(self, by: str = "gate") -> list[int]:
        """Per filter, ``argmax_c`` of its gate (``by="gate"``) or MI column (ties: lowest c)."""
        matrix = self.gate if by == "gate" else self.mi
        if matrix is None:
            raise ValueError(f"this atlas has no {'gate' if by == 'gate' else 'MI matrix'}")
        return [int(c) for c in matrix.argmax(dim=0)]

    def peak_centres(self) -> Tensor:
        """The peaks as (x, y) pixel coordinates of the cell centres at image resolution."""
        (height, width), (h, w) = self.image_size, self.layer_size
        rows, cols = self.peaks[..., 0].float(), self.peaks[..., 1].float()
        return torch.stack([(cols + 0.5) * width / w, (rows + 0.5) * height / h], dim=-1)

    def filter_record(self, k: int) -> dict[str, Any]:
        """Everything about filter ``k`` as JSON-ready values (no pixels)."""
        keep = self.indices[k] >= 0
        centres = self.peak_centres()[k]
        record: dict[str, Any] = {
            "filter": int(k),
            "threshold": float(self.thresholds[k]),
            "top": [
                {
                    "index": int(self.indices[k, j]),
                    "score": float(self.scores[k, j]),
                    "label": int(self.labels[k, j]),
                    "predicted": int(self.predictions[k, j]),
                    "peak": [int(v) for v in self.peaks[k, j]],
                    "peak_xy": [round(float(v), 3) for v in centres[j]],
                    "box": [float(v) for v in self.boxes[k, j]],
                    "region_fraction": round(float(self.region_fraction[k, j]), 5),
                }
                for j in range(self.top_k)
                if bool(keep[j])
            ],
        }
        for name, matrix in (("gate", self.gate), ("mi", self.mi)):
            if matrix is not None:
                column = matrix[:, k]
                record[f"{name}_row"] = [float(v) for v in column]
                record[f"{name}_class"] = int(column.argmax())
                record[f"{name}_max"] = float(column.max())
        if self.localization is not None:
            record["localization_score"] = float(self.localization["filter_score"][k])
            record["localization_class"] = int(self.localization["related_class"][k])
            record["localization_iou"] = float(self.localization["filter_iou"][k])
        return record

    def to_dict(self) -> dict[str, Any]:
        """The atlas as JSON-ready values: indices, scores, boxes, rows -- no pixels, no maps."""
        classes = range(self.num_classes)
        serving = {
            by: {str(c): self.filters_of(c, by) for c in classes}
            for by, matrix in (("gate", self.gate), ("mi", self.mi))
            if matrix is not None
        }
        payload: dict[str, Any] = {
            "schema": ATLAS_SCHEMA,
            "class_names": list(self.class_names),
            "num_images": self.num_images,
            "num_filters": self.num_filters,
            "top_k": self.top_k,
            "image_size": list(self.image_size),
            "layer_size": list(self.layer_size),
            "min_gate": self.min_gate,
            "definitions": {
                "score": "mean over h, w of A_k(x) (global average pooling)",
                "top": "the top_k images by score, best first, ties to the lower index",
                "peak": "arg-max cell (row, col) of A_k at layer resolution; peak_xy its centre "
                        "in image pixels (x, y)",
                "box": "xyxy pixel-edge box of the largest 8-connected component of "
                       "upsample(A_k) >= threshold (bilinear, align_corners=False)",
                "serving_gate": "filters with G[c, k] >= min_gate, by decreasing G[c, k]",
                "serving_mi": "filters with argmax_c M[c, k] = c, by decreasing M[c, k]",
            },
            "serving": serving,
            "filters": [self.filter_record(k) for k in range(self.num_filters)],
            "info": dict(self.info),
        }  # fmt: skip
        if self.localization is not None:
            payload["localization"] = {
                "ap": self.localization["ap"],
                "iou_threshold": self.localization["iou_threshold"],
                "protocol": "per-filter: upsample(A_k) >= t_k vs the object mask, a hit when "
                            "IoU > iou_threshold; a filter's score is its hit rate on its best "
                            "class, AP the mean over filters",
            }  # fmt: skip
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "FilterAtlas":
        """Rebuild an atlas from :meth:`to_dict` (``maps`` come back empty: they are not saved).

        Raises:
            ValueError: a payload of another schema version.
        """
        if payload.get("schema") != ATLAS_SCHEMA:
            raise ValueError(
                f"atlas schema {payload.get('schema')!r} is not {ATLAS_SCHEMA}; rebuild it with "
                "csg-interp atlas RUN"
            )
        num_filters, top_k = int(payload["num_filters"]), int(payload["top_k"])
        indices = torch.full((num_filters, top_k), -1, dtype=torch.long)
        scores = torch.full((num_filters, top_k), float("nan"))
        labels = torch.full_like(indices, -1)
        predictions = torch.full_like(indices, -1)
        peaks = torch.zeros((num_filters, top_k, 2), dtype=torch.long)
        boxes = torch.zeros((num_filters, top_k, 4))
        fraction = torch.zeros((num_filters, top_k))
        gate_rows, mi_rows, loc = [], [], {"filter_score": [], "related_class": [],
                                          "filter_iou": []}  # fmt: skip
        for k, record in enumerate(payload["filters"]):
            for j, entry in enumerate(record["top"]):
                indices[k, j], scores[k, j] = entry["index"], entry["score"]
                labels[k, j], predictions[k, j] = entry["label"], entry["predicted"]
                peaks[k, j] = torch.tensor(entry["peak"])
                boxes[k, j] = torch.tensor(entry["box"])
                fraction[k, j] = entry["region_fraction"]
            if "gate_row" in record:
                gate_rows.append(record["gate_row"])
            if "mi_row" in record:
                mi_rows.append(record["mi_row"])
            if "localization_score" in record:
                loc["filter_score"].append(record["localization_score"])
                loc["related_class"].append(record["localization_class"])
                loc["filter_iou"].append(record["localization_iou"])
        localization = None
        if "localization" in payload:
            localization = {
                "filter_score": torch.tensor(loc["filter_score"]),
                "related_class": torch.tensor(loc["related_class"], dtype=torch.long),
                "filter_iou": torch.tensor(loc["filter_iou"]),
                **{k: payload["localization"][k] for k in ("ap", "iou_threshold")},
            }
        h, w = payload["layer_size"]
        return cls(
            indices=indices, scores=scores, labels=labels, predictions=predictions, peaks=peaks,
            boxes=boxes, region_fraction=fraction, maps=torch.zeros((num_filters, 0, h, w)),
            thresholds=torch.tensor([r["threshold"] for r in payload["filters"]]),
            gate=torch.tensor(gate_rows).T.contiguous() if gate_rows else None,
            mi=torch.tensor(mi_rows).T.contiguous() if mi_rows else None,
            class_names=list(payload["class_names"]), image_size=tuple(payload["image_size"]),
            layer_size=(h, w), num_images=int(payload["num_images"]),
            min_gate=float(payload["min_gate"]), localization=localization,
            info=dict(payload.get("info", {})),
        )  # fmt: skip


def _merge_top(
    best: dict[str, Tensor], candidates: dict[str, Tensor], top_k: int
) -> dict[str, Tensor]:
    """Keep the ``top_k`` best of the kept entries followed by a new batch, per filter.

    The kept entries come first and hold lower data-set indices than the batch, and a stable
    descending sort keeps equal scores in that order: ties go to the lower index. Only the
    selected maps are gathered (never a (K, k + B, h, w) concatenation).
    """
    kept = best["scores"].shape[1]
    scores = torch.cat([best["scores"], candidates["scores"]], dim=1)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :top_k]
    out = {"scores": scores.gather(1, order)}
    for name in ("indices", "labels", "predictions"):
        out[name] = torch.cat([best[name], candidates[name]], dim=1).gather(1, order)
    spatial = candidates["maps"].shape[2:]
    from_batch = candidates["maps"].gather(
        1, (order - kept).clamp_min(0)[:, :, None, None].expand(-1, -1, *spatial)
    )
    if kept:
        from_best = best["maps"].gather(
            1, order.clamp_max(kept - 1)[:, :, None, None].expand(-1, -1, *spatial)
        )
        from_batch = torch.where((order < kept)[:, :, None, None], from_best, from_batch)
    out["maps"] = from_batch
    return out


@torch.no_grad()
def filter_atlas(
    net: nn.Module,
    dataset: Any,
    thresholds: Tensor | np.ndarray | Sequence[float],
    *,
    gate: Tensor | np.ndarray | ClassSpecificGate | None = None,
    mi: Tensor | np.ndarray | None = None,
    top_k: int = 9,
    min_gate: float = 0.5,
    masks: Tensor | np.ndarray | None = None,
    iou_threshold: float = 0.3,
    class_names: Sequence[str] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> FilterAtlas:
    """Every filter's top images, peaks and regions from one no-grad pass over ``dataset``.

    Args:
        net: a :class:`~csg_interp.training.CSGNet` (anything with ``forward_features`` and
            ``head``); run in eval mode, the gate bypassed.
        dataset: images (N, C, H, W) in [0, 1], ``(images, labels)`` or a Dataset of
            ``(image, label)`` (a split of :func:`~csg_interp.data.load_dataset`; its
            ``extras["masks"]`` are used for localization when ``masks`` is not given).
        thresholds: (K,) t_k from :func:`~csg_interp.attribution.filter_thresholds` on a
            validation split.
        gate: the C×K gate (default ``net.gate``); for an STD model ``gate_from_mi(mi)``.
        mi: the C×K MI matrix (``csg_interp.metrics.mutual_information_matrix``), optional.
        top_k: images kept per filter.
        min_gate: ``G[c, k] >= min_gate`` means filter k serves class c.
        masks: bool (N, H, W) object masks for the per-filter localization score, optional.
        iou_threshold: a localization hit when IoU > this (the paper's 0.3).
        class_names: one name per class (default the dataset's ``classes`` or ``"0"``...).
        batch_size: images per forward pass.
        device: where to run (``None``: where the network is; ``"auto"``: CUDA when present).
        progress: a tqdm bar over batches.

    Returns:
        :class:`FilterAtlas`.

    Raises:
        ValueError: ``top_k < 1``, thresholds / gate / MI / masks of the wrong shape, a
            network without ``forward_features``.

    Example:
        >>> from csg_interp.models import SmallCNN
        >>> from csg_interp.training import CSGNet
        >>> net = CSGNet.from_backbone(SmallCNN(3, 1, (4, 6, 8))).eval()
        >>> atlas = filter_atlas(net, torch.rand(20, 1, 16, 16), torch.zeros(8), top_k=3)
        >>> atlas.indices.shape, atlas.boxes.shape
        (torch.Size([8, 3]), torch.Size([8, 3, 4]))
    """
    from ..metrics.features import resolve_device

    if not hasattr(net, "forward_features") or not hasattr(net, "head"):
        raise ValueError(
            f"{type(net).__name__} has no forward_features/head; wrap it with "
            "csg_interp.training.CSGNet.from_backbone(model)"
        )
    if int(top_k) < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    top_k = int(top_k)
    data, has_labels = _as_dataset(dataset)
    num_images = len(data)  # type: ignore[arg-type]
    if masks is None and isinstance(getattr(dataset, "extras", None), dict):
        masks = dataset.extras.get("masks")
    if masks is not None:
        masks = check_masks(masks, count=num_images)
    target = resolve_device(device, net)
    was_training = net.training
    net.to(target).eval()
    best: dict[str, Tensor] | None = None
    thresholds_t: Tensor | None = None
    num_classes = None
    hits = iou_sum = class_counts = None
    start = 0
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    try:
        for batch in tqdm(loader, desc="atlas", disable=not progress, leave=False):
            images = batch[0].to(target)
            if images.dtype == torch.uint8:
                images = images.float().div_(255.0)
            activations = net.forward_features(images)
            if activations.dim() != 4:
                raise ValueError(
                    f"the gated map has shape {tuple(activations.shape)}; the atlas needs a "
                    "convolutional map (N, K, h, w)"
                )
            logits = net.head(activations)
            count, num_filters = activations.shape[:2]
            if best is None:
                num_classes = int(logits.shape[1])
                thresholds_t = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32)
                thresholds_t = thresholds_t.flatten()
                if thresholds_t.shape[0] != num_filters:
                    raise ValueError(
                        f"got {thresholds_t.shape[0]} thresholds for {num_filters} filters; "
                        "compute them with filter_thresholds(activations) on a validation split"
                    )
                h, w = activations.shape[2:]
                best = {
                    "scores": torch.zeros((num_filters, 0)),
                    "indices": torch.zeros((num_filters, 0), dtype=torch.long),
                    "labels": torch.zeros((num_filters, 0), dtype=torch.long),
                    "predictions": torch.zeros((num_filters, 0), dtype=torch.long),
                    "maps": torch.zeros((num_filters, 0, h, w)),
                }
                if masks is not None:
                    hits = torch.zeros(num_filters, num_classes)
                    iou_sum = torch.zeros(num_filters, num_classes)
                    class_counts = torch.zeros(num_classes)
            acts = activations.float().cpu()
            labels = (
                torch.as_tensor(batch[1]).long().cpu()
                if has_labels
                else torch.full((count,), -1, dtype=torch.long)
            )
            candidates = {
                "scores": acts.mean(dim=(2, 3)).T,
                "indices": torch.arange(start, start + count).expand(num_filters, -1),
                "labels": labels.expand(num_filters, -1),
                "predictions": logits.argmax(dim=1).cpu().expand(num_filters, -1),
                "maps": acts.transpose(0, 1),
            }
            best = _merge_top(best, candidates, top_k)
            if masks is not None:
                if not has_labels:
                    raise ValueError("per-filter localization needs labels: pass (images, labels)")
                chunk = filter_mask_iou(
                    acts, masks[start : start + count], labels, num_classes,
                    thresholds=thresholds_t, iou_threshold=iou_threshold,
                )  # fmt: skip
                one_hot = torch.nn.functional.one_hot(labels, num_classes).float()  # (B, C)
                hits += (chunk.iou > iou_threshold).float().T @ one_hot
                iou_sum += chunk.iou.T @ one_hot
                class_counts += one_hot.sum(dim=0)
            start += count
    finally:
        net.train(was_training)
    if best is None:
        raise ValueError("the data set is empty")
    assert thresholds_t is not None and num_classes is not None
    num_filters, kept = best["scores"].shape
    h, w = best["maps"].shape[2:]
    image_size = tuple(int(v) for v in data[0][0].shape[-2:])
    pad = top_k - kept
    if pad:
        nan = torch.full((num_filters, pad), float("nan"))
        best["scores"] = torch.cat([best["scores"], nan], 1)
        for name in ("indices", "labels", "predictions"):
            best[name] = torch.cat(
                [best[name], torch.full((num_filters, pad), -1, dtype=torch.long)], 1
            )
        best["maps"] = torch.cat([best["maps"], torch.zeros((num_filters, pad, h, w))], 1)
    flat_maps = best["maps"].reshape(num_filters * top_k, h, w)
    peak = flat_maps.flatten(1).argmax(dim=1)
    peaks = torch.stack([peak // w, peak % w], dim=1).view(num_filters, top_k, 2)
    region = upsample_maps(flat_maps, image_size) >= thresholds_t.repeat_interleave(top_k)[
        :, None, None
    ]
    region &= (best["indices"] >= 0).flatten()[:, None, None]
    boxes, _ = boxes_from_masks(region, component="largest")
    fraction = region.flatten(1).float().mean(dim=1)
    localization = None
    if masks is not None:
        assert hits is not None and iou_sum is not None and class_counts is not None
        present = class_counts > 0
        success = torch.where(present, hits / class_counts.clamp_min(1), float("nan"))
        class_iou = torch.where(present, iou_sum / class_counts.clamp_min(1), float("nan"))
        filter_score, related = torch.nan_to_num(success, nan=-1.0).max(dim=1)
        localization = {
            "filter_score": filter_score,
            "related_class": related,
            "filter_iou": class_iou.gather(1, related[:, None])[:, 0],
            "ap": float(filter_score.mean()),
            "iou_threshold": float(iou_threshold),
        }
    if gate is None:
        gate = getattr(net, "gate", None)
    if class_names is None:
        class_names = getattr(dataset, "classes", None) or [str(c) for c in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"got {len(class_names)} class names for {num_classes} classes")
    return FilterAtlas(
        indices=best["indices"], scores=best["scores"], labels=best["labels"],
        predictions=best["predictions"], peaks=peaks, boxes=boxes.view(num_filters, top_k, 4),
        region_fraction=fraction.view(num_filters, top_k), maps=best["maps"],
        thresholds=thresholds_t, gate=_matrix(gate, "gate", num_classes, num_filters),
        mi=_matrix(mi, "mi", num_classes, num_filters), class_names=[str(c) for c in class_names],
        image_size=image_size, layer_size=(int(h), int(w)), num_images=num_images,
        min_gate=float(min_gate), localization=localization,
    )  # fmt: skip
