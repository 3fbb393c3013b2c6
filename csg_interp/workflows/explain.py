"""``explain``: class maps and the filters that fired, for images of a run (``RUN_DIR/explain``).

Per image, the class map of the predicted class (:class:`~csg_interp.attribution.CSGAttribution`)
and the activation maps of the filters that fired for it, with their gate values; what "fired"
means is documented in :mod:`csg_interp.attribution.explain`. An STD run is explained through
``gate_from_mi`` of its MI matrix on validation images, so both models are explained the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from csg_interp._utils import resolve_device, write_text_atomic
from csg_interp.attribution.explain import (
    INDEX_VERSION,
    ImageExplanation,
    explain_images,
    read_image_files,
)
from csg_interp.plotting.explanations import save_explanation_figure

from ._result import RunResult

__all__ = ["ExplainResult", "explain_run", "write_explanations"]


@dataclass
class ExplainResult(RunResult):
    """The explanations written for a run: the ``index.json`` payload and where it is.

    Attributes:
        index: ``version``, ``info`` (run, mode, gate, ranking; ``sanity`` when it ran),
            ``classes`` and ``images`` (per image: source, prediction, probability, label, the
            ``npz``/``png`` file names and the fired ``filters``).
        index_path: the ``index.json`` file.
    """

    FILENAME = "explain/index.json"

    index: dict[str, Any]
    index_path: Path

    def to_dict(self) -> dict[str, Any]:
        return self.index

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> ExplainResult:
        return cls(payload, path)

    def summary(self) -> str:
        lines = []
        for entry in self.index["images"]:
            name = entry["predicted_name"] or entry["predicted"]
            filters = ", ".join(f"{f['filter']} (G={f['gate']:.2f})" for f in entry["filters"])
            lines.append(f"{entry['source']}: {name} p={entry['probability']:.2f}; "
                         f"filters: {filters or 'none'}")  # fmt: skip
        sanity = self.index["info"].get("sanity")
        if sanity:
            finals = ", ".join(f"{m} {v:.2f}" for m, v in sanity["final_spearman"].items())
            failed = ", ".join(sanity["unchanged_methods"]) or "none"
            lines.append(
                f"sanity check on {sanity['images']} images: Spearman ρ after randomising the "
                f"whole model: {finals}; unchanged (fail): {failed}"
            )
        lines.append(f"wrote {len(self.index['images'])} explanations and {self.index_path}")
        return "\n".join(lines)


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
        explanations: from :func:`~csg_interp.attribution.explain_images`.
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
            save_explanation_figure(explanation, image, names, out / f"{name}.png")
        entries.append(entry)
    index = {"version": INDEX_VERSION, "info": dict(info or {}), "classes": names,
             "images": entries}  # fmt: skip
    return write_text_atomic(out / "index.json", json.dumps(index, indent=2))


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
    device: str = "auto",
    data_root: str | None = None,
    out: str | os.PathLike | None = None,
    figures: bool = True,
    n_jobs: int | None = -1,
    sanity_images: int = 0,
) -> ExplainResult:
    """Explain images with a trained run and write them to ``RUN_DIR/explain`` (or ``out``).

    Args:
        run_dir: a run directory.
        images: test-set indices (``"12"``) and/or image files; default the first
            ``num_images`` test images.
        num_images: how many test images when ``images`` is empty.
        gate: ``auto`` (the learned gate, or the MI gate for an STD model), ``learned`` or ``mi``
            (``gate_from_mi`` of the MI matrix on ``fit_images`` validation images).
        mode: the class map's :class:`~csg_interp.attribution.CSGAttribution` mode.
        top_n, min_gate: which filters count as fired (module docstring).
        fit_images: validation images for the MI gate.
        checkpoint: ``last`` or ``best``.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        data_root: the data set's folder, if it moved.
        out: output folder.
        figures: write the PNGs.
        n_jobs: workers for the MI matrix (``-1`` all cores; ``1`` avoids starting processes,
            faster for a few hundred images).
        sanity_images: if > 0, also run :func:`~csg_interp.attribution.sanity_check` (cascading
            randomisation, CSGAttribution vs Captum LayerGradCam) on that many of the images and
            write ``sanity.json`` and ``sanity.md`` next to the index.

    Returns:
        An :class:`ExplainResult` (the ``index.json`` payload and its path).

    Example:
        >>> print(explain_run("runs/csg", images=["0", "1"]).summary())  # doctest: +SKIP
    """
    from csg_interp.metrics import extract_features, gate_from_mi, mutual_information_matrix
    from csg_interp.training import load_run

    if gate not in ("auto", "learned", "mi"):
        raise ValueError(f"gate must be auto, learned or mi, got {gate!r}")
    from csg_interp.errors import check_output_parent, check_positive_int

    check_positive_int(num_images, "num_images")
    check_positive_int(fit_images, "fit_images")
    check_positive_int(sanity_images, "sanity_images", minimum=0)
    if out is not None:
        check_output_parent(out, "out")
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
            net, bundle.val.subset(np.arange(count)), progress=None
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
        from csg_interp.attribution.sanity import sanity_check

        count = min(int(sanity_images), x.shape[0])
        device_x = x[:count].to(next(net.parameters()).device)
        result = sanity_check(net, device_x, gate=gate_matrix, mode=mode)
        target.mkdir(parents=True, exist_ok=True)
        sanity = {"images": count, "units": result.units, "rows": result.rows}
        write_text_atomic(target / "sanity.json", json.dumps(sanity, indent=2))
        write_text_atomic(target / "sanity.md", result.to_markdown() + "\n")
        info["sanity"] = {
            "images": count,
            "final_spearman": {m: result.final(m) for m in result.methods},
            "unchanged_methods": result.unchanged(),
        }
    path = write_explanations(explanations, x, target, run.classes or None, info, figures)
    return ExplainResult(json.loads(path.read_text()), path)
