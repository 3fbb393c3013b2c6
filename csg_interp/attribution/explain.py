"""Explain images: the class map of the predicted class and the filters that fired for it.

:func:`explain_images` computes (one forward pass per batch, through :class:`CSGAttribution`);
:func:`csg_interp.workflows.explain.write_explanations` writes per image an ``.npz`` and a
``.png`` plus one ``index.json`` (the report and the gallery read it);
:func:`csg_interp.workflows.explain_run` does both for a run directory (what ``csg-interp
explain`` calls). ``explain_run`` and ``write_explanations`` stay importable from here.

"Fired for class c" (documented ranking): filters with gate ``G[c, k] ≥ min_gate`` and a positive
mean activation, ranked by the gated mean activation ``G[c, k] · mean(A_k(x))``, at most
``top_n`` (ties: the lower filter index).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..training.gate import rank_filters
from ..training.network import CSGNet, check_images
from .csg_attribution import CSGAttribution

__all__ = [
    "FilterExplanation",
    "ImageExplanation",
    "explain_images",
    "write_explanations",
    "explain_run",
    "read_image_files",
]

INDEX_VERSION = 1


@dataclass
class FilterExplanation:
    """One filter that fired: its index, gate value ``G[c, k]``, head weight ``W[c, k]`` (``None``
    outside ``cam`` mode), mean activation ``ā_k``, the ranking score ``G·ā`` and its contribution
    to the class map's mean (``G·W·ā`` in ``cam`` mode, ``G·ā`` otherwise)."""

    filter: int
    gate: float
    weight: float | None
    mean_activation: float
    score: float
    contribution: float


@dataclass
class ImageExplanation:
    """The explanation of one image.

    Attributes:
        source: where the image came from (``"test[12]"`` or a file path).
        predicted: the predicted class (the class explained).
        probability: its softmax probability.
        label: the true class, if known.
        class_map: (h, w) map of the predicted class at the layer's resolution.
        filter_maps: (n, h, w) activation maps ``A_k`` of the fired filters.
        filters: the n fired filters, ranked.
    """

    source: str
    predicted: int
    probability: float
    label: int | None
    class_map: np.ndarray
    filter_maps: np.ndarray
    filters: list[FilterExplanation] = field(default_factory=list)


@torch.no_grad()
def explain_images(
    net: CSGNet,
    images: Tensor,
    gate: Tensor | None = None,
    mode: str = "cam",
    top_n: int = 8,
    min_gate: float = 0.5,
    labels: Sequence[int] | Tensor | None = None,
    sources: Sequence[str] | None = None,
    batch_size: int = 64,
) -> list[ImageExplanation]:
    """Explain each image's predicted class with the class map and the filters that fired.

    Args:
        net: the network (``net.gate`` is used unless ``gate`` is given; an STD model needs
            ``gate``, e.g. ``gate_from_mi(M)``).
        images: (N, C, H, W) in [0, 1].
        gate: the C×K gate to explain with.
        mode: the :class:`CSGAttribution` mode of the class map (``cam`` by default).
        top_n: at most this many filters per image.
        min_gate: a filter must have ``G[c, k] ≥ min_gate`` to count as a filter of class c.
        labels: the true classes (stored, not used).
        sources: a name per image (default ``"image[i]"``).
        batch_size: images per forward pass.

    Returns:
        One :class:`ImageExplanation` per image.

    Example:
        >>> from csg_interp.models import SmallCNN
        >>> net = CSGNet.from_backbone(SmallCNN(3, 1, (4, 6, 8))).eval()
        >>> [e.class_map.shape for e in explain_images(net, torch.rand(2, 1, 16, 16))]
        [(4, 4), (4, 4)]
    """
    check_images(images)
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    if sources is not None and len(sources) != images.shape[0]:
        raise ValueError(f"{len(sources)} sources for {images.shape[0]} images")
    label_list = None if labels is None else [int(v) for v in torch.as_tensor(labels).tolist()]
    if label_list is not None and len(label_list) != images.shape[0]:
        raise ValueError(f"{len(label_list)} labels for {images.shape[0]} images")
    method = CSGAttribution.from_net(net, gate=gate, mode=mode)
    device = next(net.parameters()).device
    results: list[ImageExplanation] = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device)
        activations, logits = method.layer_output_and_logits(batch)
        predicted = logits.argmax(dim=1)
        probability = logits.softmax(dim=1).gather(1, predicted[:, None])[:, 0]
        class_maps = method.maps_from_activations(activations, predicted)[:, 0]
        gate_rows = method.gate.to(device).index_select(0, predicted)
        coefficients = method.filter_weights(activations, predicted)
        weight_rows = (
            method.weight.detach().to(device).index_select(0, predicted) if mode == "cam" else None
        )
        means = activations.mean(dim=(2, 3))
        scores = method.filter_scores(activations, predicted)  # G[c, k] · mean A_k
        order = rank_filters(scores)
        for i in range(batch.shape[0]):
            index = start + i
            chosen = [
                int(k) for k in order[i].tolist()
                if gate_rows[i, k] >= min_gate and means[i, k] > 0
            ][:top_n]  # fmt: skip
            filters = [
                FilterExplanation(
                    filter=k,
                    gate=float(gate_rows[i, k]),
                    weight=None if weight_rows is None else float(weight_rows[i, k]),
                    mean_activation=float(means[i, k]),
                    score=float(scores[i, k]),
                    contribution=float(coefficients[i, k] * means[i, k]),
                )
                for k in chosen
            ]
            results.append(
                ImageExplanation(
                    source=sources[index] if sources is not None else f"image[{index}]",
                    predicted=int(predicted[i]),
                    probability=float(probability[i]),
                    label=None if label_list is None else label_list[index],
                    class_map=class_maps[i].cpu().numpy(),
                    filter_maps=activations[i, chosen].cpu().numpy(),
                    filters=filters,
                )
            )
    return results


def read_image_files(
    paths: Sequence[str | os.PathLike], in_channels: int, size: Sequence[int]
) -> Tensor:
    """Read image files (OpenCV) as a float batch (N, in_channels, H, W) in [0, 1].

    Grey images are repeated to 3 channels for RGB models; colour images are converted to grey
    for 1-channel models; every image is resized to ``size`` (``cv2.INTER_AREA``).

    Raises:
        FileNotFoundError: a missing or unreadable file.
    """
    import cv2

    height, width = int(size[0]), int(size[1])
    batch = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} not found")
        flag = cv2.IMREAD_COLOR if in_channels == 3 else cv2.IMREAD_GRAYSCALE
        array = cv2.imread(str(path), flag)
        if array is None:
            raise FileNotFoundError(f"{path} is not an image OpenCV can read (png, jpg, ...)")
        if in_channels == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
        array = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
        tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
        if tensor.shape[0] != in_channels:
            raise ValueError(f"{path}: cannot convert to {in_channels} channel(s)")
        batch.append(tensor)
    return torch.stack(batch)


def explain_run(run_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
    """:func:`csg_interp.workflows.explain_run`, returning the path of ``index.json``.

    Kept so existing imports work; new code should call the workflow, which returns a
    :class:`~csg_interp.workflows.ExplainResult`.
    """
    from csg_interp.workflows.explain import explain_run as workflow

    return workflow(run_dir, *args, **kwargs).index_path


def __getattr__(name: str) -> Any:
    # Compatibility re-export: writing explanation folders moved to the explain workflow.
    if name == "write_explanations":
        from csg_interp.workflows.explain import write_explanations

        return write_explanations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
