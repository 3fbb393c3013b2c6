"""Explain images: the class map of the predicted class and the filters that fired for it.

:func:`explain_images` computes (one forward pass per batch, through :class:`CSGAttribution`);
:func:`write_explanations` writes per image an ``.npz`` and a ``.png`` plus one ``index.json``
(the report and the gallery read it); :func:`explain_run` does both for a run directory (what
``csg-interp explain`` calls).

"Fired for class c" (documented ranking): filters with gate ``G[c, k] ≥ min_gate`` and a positive
mean activation, ranked by the gated mean activation ``G[c, k] · mean(A_k(x))``, at most
``top_n`` (ties: the lower filter index).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

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
        scores = gate_rows * means
        order = torch.argsort(scores, dim=1, descending=True, stable=True)
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


def _safe_name(index: int, source: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(source).stem)
    return f"{index:03d}_{stem}"[:60]


def write_explanations(
    explanations: Sequence[ImageExplanation],
    images: Tensor,
    out_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    info: dict[str, Any] | None = None,
    figures: bool = True,
) -> Path:
    """Write per image ``<name>.npz`` (+ ``<name>.png``) and ``index.json`` into ``out_dir``.

    ``.npz`` keys: ``image`` (C, H, W) float32 in [0, 1]; ``class_map`` (h, w) at layer
    resolution; ``class_map_upsampled`` (H, W), bilinear; ``filter_maps`` (n, h, w) activations;
    ``filters`` (n,) indices; ``gate_values`` (n,). ``index.json``: ``version``, ``info`` (mode,
    gate source, …), ``classes`` and one entry per image (source, predicted class and name,
    probability, label, file names, the fired filters with gate, weight, mean activation, score,
    contribution). The PNG shows the class map over the image, then the filters
    (:class:`~csg_interp.attribution.ClassFiltersDisplay`).

    Args:
        explanations: from :func:`explain_images`.
        images: the same images (N, C, H, W).
        out_dir: the folder (created).
        class_names: names of the classes.
        info: extra fields for the index.
        figures: also write the PNGs.

    Returns:
        The path of ``index.json``.
    """
    if len(explanations) != images.shape[0]:
        raise ValueError(f"{len(explanations)} explanations for {images.shape[0]} images")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(class_names) if class_names is not None else None
    entries = []
    for index, (explanation, image) in enumerate(zip(explanations, images)):
        name = _safe_name(index, explanation.source)
        class_map = torch.from_numpy(explanation.class_map)[None, None]
        upsampled = F.interpolate(class_map, tuple(image.shape[1:]), mode="bilinear",
                                  align_corners=False)[0, 0]  # fmt: skip
        np.savez_compressed(
            out / f"{name}.npz",
            image=image.detach().float().cpu().numpy(),
            class_map=explanation.class_map,
            class_map_upsampled=upsampled.numpy(),
            filter_maps=explanation.filter_maps,
            filters=np.array([f.filter for f in explanation.filters], dtype=np.int64),
            gate_values=np.array([f.gate for f in explanation.filters], dtype=np.float32),
        )
        entry = {
            "source": explanation.source,
            "predicted": explanation.predicted,
            "predicted_name": names[explanation.predicted] if names else None,
            "probability": explanation.probability,
            "label": explanation.label,
            "label_name": (
                names[explanation.label] if names and explanation.label is not None else None
            ),
            "npz": f"{name}.npz",
            "png": f"{name}.png" if figures else None,
            "filters": [asdict(f) for f in explanation.filters],
        }
        if figures:
            _figure(explanation, image, names, out / f"{name}.png")
        entries.append(entry)
    index = {"version": INDEX_VERSION, "info": dict(info or {}), "classes": names,
             "images": entries}  # fmt: skip
    path = out / "index.json"
    path.write_text(json.dumps(index, indent=2))
    return path


def _figure(
    explanation: ImageExplanation, image: Tensor, names: list[str] | None, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .displays import AttributionOverlayDisplay, ClassFiltersDisplay

    n = len(explanation.filters)
    cols = min(n + 2, 6)
    rows = -(-(n + 2) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.3 * rows), squeeze=False)
    axes = list(grid.ravel())
    cls = explanation.predicted
    label = names[cls] if names else str(cls)
    AttributionOverlayDisplay(
        image.cpu(), explanation.class_map, title=f"{label} ({explanation.probability:.2f})"
    ).plot(ax=axes[0])
    if n:
        ClassFiltersDisplay(
            image.cpu(), explanation.filter_maps, [f.filter for f in explanation.filters],
            [f.gate for f in explanation.filters], label,
        ).plot(axes=axes[1 : n + 2])  # fmt: skip
    for ax in axes[(n + 2 if n else 1) :]:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


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


def _resolve_images(
    tokens: Sequence[str] | None, num_images: int, test, in_channels: int, size: Sequence[int]
) -> tuple[Tensor, list[int | None], list[str]]:
    """Integers are test-set indices, anything else an image file."""
    if not tokens:
        if num_images < 1:
            raise ValueError(f"--num-images must be at least 1, got {num_images}")
        tokens = [str(i) for i in range(min(num_images, len(test)))]
    indices = [t for t in tokens if str(t).lstrip("-").isdigit()]
    files = [t for t in tokens if not str(t).lstrip("-").isdigit()]
    images, labels, sources = [], [], []
    if indices:
        index = torch.tensor([int(t) for t in indices])
        if int(index.min()) < 0 or int(index.max()) >= len(test):
            raise ValueError(
                f"test-set index out of range: the test split has {len(test)} images "
                f"(valid: 0..{len(test) - 1})"
            )
        x, y = test.tensors(index)
        images.append(x)
        labels += [int(v) for v in y]
        sources += [f"test[{int(i)}]" for i in index]
    if files:
        images.append(read_image_files(files, in_channels, size))
        labels += [None] * len(files)
        sources += [str(f) for f in files]
    return torch.cat(images), labels, sources


def explain_run(
    run_dir: str | os.PathLike,
    images: Sequence[str] | None = None,
    num_images: int = 8,
    gate: str = "auto",
    mode: str = "cam",
    top_n: int = 8,
    min_gate: float = 0.5,
    fit_images: int = 2000,
    checkpoint: str = "last",
    device: str = "cpu",
    data_root: str | None = None,
    out: str | os.PathLike | None = None,
    figures: bool = True,
    n_jobs: int | None = -1,
    sanity_images: int = 0,
) -> Path:
    """Explain images with a trained run and write them to ``RUN_DIR/explain`` (or ``out``).

    Args:
        run_dir: a run directory.
        images: test-set indices (``"12"``) and/or image files; default the first
            ``num_images`` test images.
        num_images: how many test images when ``images`` is empty.
        gate: ``auto`` (the learned gate, or the MI gate for an STD model), ``learned`` or ``mi``
            (``gate_from_mi`` of the MI matrix on ``fit_images`` validation images).
        mode: the class map's :class:`CSGAttribution` mode.
        top_n, min_gate: which filters count as fired (module docstring).
        fit_images: validation images for the MI gate.
        checkpoint: ``last`` or ``best``.
        device: ``cpu``, ``cuda`` or ``auto``.
        data_root: the data set's folder, if it moved.
        out: output folder.
        figures: write the PNGs.
        n_jobs: workers for the MI matrix (``-1`` all cores; ``1`` avoids starting processes,
            faster for a few hundred images).
        sanity_images: if > 0, also run :func:`~csg_interp.attribution.sanity_check` (cascading
            randomisation, CSGAttribution vs Captum LayerGradCam) on that many of the images and
            write ``sanity.json`` and ``sanity.md`` next to the index.

    Returns:
        The path of ``index.json``.
    """
    from ..metrics import extract_features, gate_from_mi, mutual_information_matrix
    from ..metrics.features import resolve_device
    from ..training import load_run

    if gate not in ("auto", "learned", "mi"):
        raise ValueError(f"gate must be auto, learned or mi, got {gate!r}")
    run = load_run(run_dir, checkpoint=checkpoint, device=resolve_device(device))
    net = run.net
    overrides = {"data_root": data_root} if data_root else {}
    bundle = run.load_data(**overrides)
    size = run.meta.get("image_size") or list(bundle.test.image_shape[1:])
    x, labels, sources = _resolve_images(images, num_images, bundle.test,
                                         int(run.meta.get("in_channels", 1)), size)  # fmt: skip
    if gate == "learned" and net.gate is None:
        raise ValueError(f"{run_dir} is an STD run (no learned gate); use --gate mi or auto")
    use_mi = gate == "mi" or (gate == "auto" and net.gate is None)
    gate_matrix = None
    if use_mi:
        count = min(int(fit_images), len(bundle.val))
        features, fit_labels = extract_features(
            net, bundle.val.subset(np.arange(count)), progress=False
        )
        mi = mutual_information_matrix(features, fit_labels, net.num_classes, n_jobs=n_jobs)
        gate_matrix = gate_from_mi(mi)
    explanations = explain_images(
        net, x, gate=gate_matrix, mode=mode, top_n=top_n, min_gate=min_gate,
        labels=None if None in labels else labels, sources=sources,
    )  # fmt: skip
    for explanation, label in zip(explanations, labels):
        explanation.label = label
    info = {
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "mode": mode,
        "gate": "mi (gate_from_mi on %d validation images)" % min(int(fit_images), len(bundle.val))
        if use_mi else "learned",
        "top_n": top_n,
        "min_gate": min_gate,
        "ranking": "G[c,k] * mean(A_k); filters with G[c,k] >= min_gate and mean(A_k) > 0",
        "class_map_resolution": list(explanations[0].class_map.shape) if explanations else None,
    }
    target = Path(out) if out is not None else Path(run_dir) / "explain"
    if sanity_images > 0:
        from .sanity import sanity_check

        count = min(int(sanity_images), x.shape[0])
        device_x = x[:count].to(next(net.parameters()).device)
        result = sanity_check(net, device_x, gate=gate_matrix, mode=mode)
        target.mkdir(parents=True, exist_ok=True)
        (target / "sanity.json").write_text(json.dumps(
            {"images": count, "units": result.units, "rows": result.rows}, indent=2))  # fmt: skip
        (target / "sanity.md").write_text(result.to_markdown() + "\n")
        info["sanity"] = {
            "images": count,
            "final_spearman": {m: result.final(m) for m in result.methods},
            "unchanged_methods": result.unchanged(),
        }
    return write_explanations(explanations, x, target, run.classes or None, info, figures)
