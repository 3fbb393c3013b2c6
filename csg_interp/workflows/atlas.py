"""``atlas``: the filter atlas of a run directory (``RUN_DIR/atlas.json``).

:func:`atlas_run` prepares the atlas's inputs from the run -- the thresholds t_k from the
validation split, the MI matrix from the run's ``metrics.json`` (or from validation images when
it has none) and, for an STD model, the gate ``gate_from_mi(M)`` -- then makes one
:func:`~csg_interp.attribution.filter_atlas` pass over the chosen split and returns an
:class:`AtlasResult` (``save(folder)`` writes ``atlas.json``; the page ``atlas.html`` is rendered
by :func:`csg_interp.report.atlas_page.write_atlas_html`). With ``baseline`` the STD twin's atlas
is computed the same way on the same images, through its MI-derived gate. See ``docs/atlas.md``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csg_interp._utils import resolve_device, write_json_atomic
from csg_interp.attribution.atlas import FilterAtlas, filter_atlas
from csg_interp.attribution.localization import filter_thresholds, gated_activations

from ._result import RunResult

__all__ = ["AtlasResult", "atlas_run", "ATLAS_SPLITS"]

ATLAS_SPLITS: tuple[str, ...] = ("val", "test")


@dataclass
class AtlasResult(RunResult):
    """The atlas of a run (and of its baseline) on one split.

    Attributes:
        run_dir: the run.
        split: ``val`` or ``test``.
        atlas: the run's :class:`~csg_interp.attribution.FilterAtlas`.
        baseline: the baseline's atlas (``None`` without ``baseline``).
        baseline_dir: the baseline run.
        images: per model (``"run"``, ``"baseline"``), data-set index → image (C, H, W) in
            [0, 1], only the top images (for the page; not saved).
        seconds: wall time of the atlas passes.
        info: provenance (checkpoint, data set, where thresholds, gate and MI came from).
    """

    FILENAME = "atlas.json"

    run_dir: Path
    split: str
    atlas: FilterAtlas
    baseline: FilterAtlas | None = None
    baseline_dir: Path | None = None
    images: dict[str, dict[int, Tensor]] = field(default_factory=dict)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``atlas.json``'s content (indices, scores, boxes, rows; no pixels)."""
        return {
            "run_dir": str(self.run_dir),
            "split": self.split,
            "seconds": round(self.seconds, 3),
            "info": self.info,
            "atlas": self.atlas.to_dict(),
            "baseline_dir": None if self.baseline_dir is None else str(self.baseline_dir),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
        }

    def save(self, run_dir: str | os.PathLike | None = None) -> Path:
        """Write ``atlas.json`` atomically into ``run_dir`` (default: the run); returns the path."""
        folder = Path(run_dir) if run_dir is not None else Path(self.run_dir)
        return write_json_atomic(folder / self.FILENAME, self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path | None = None) -> "AtlasResult":
        """Rebuild from ``atlas.json``'s content; ``images`` stay empty (no pixels are saved)."""
        baseline = payload.get("baseline")
        return cls(
            run_dir=Path(payload["run_dir"]), split=payload["split"],
            atlas=FilterAtlas.from_dict(payload["atlas"]),
            baseline=None if baseline is None else FilterAtlas.from_dict(baseline),
            baseline_dir=None if payload.get("baseline_dir") is None
            else Path(payload["baseline_dir"]),
            seconds=float(payload.get("seconds", 0.0)), info=dict(payload.get("info", {})),
        )  # fmt: skip

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "AtlasResult":
        """Read ``atlas.json`` from a folder (or the file itself).

        Raises:
            FileNotFoundError: no ``atlas.json`` there (run ``csg-interp atlas RUN`` first).
        """
        path = Path(run_dir)
        if path.is_dir() or not path.suffix:
            path = path / cls.FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; write it with csg-interp atlas RUN_DIR")
        return cls.from_dict(json.loads(path.read_text()), path)

    def summary(self) -> str:
        """A few lines for the terminal: filters, images, agreement of gate and MI, AP."""
        lines = []
        for name, atlas in (("run", self.atlas), ("baseline", self.baseline)):
            if atlas is None:
                continue
            text = (
                f"{name}: {atlas.num_filters} filters × top {atlas.top_k} of "
                f"{atlas.num_images} {self.split} images"
            )
            if atlas.gate is not None and atlas.mi is not None:
                gate_class = atlas.assigned_class("gate")
                mi_class = atlas.assigned_class("mi")
                agree = np.mean([g == m for g, m in zip(gate_class, mi_class)])
                text += f"; gate and MI assign the same class to {agree:.0%} of the filters"
            if atlas.localization is not None:
                text += f"; per-filter localization AP {atlas.localization['ap']:.3f}"
            lines.append(text)
        lines.append(f"atlas passes: {self.seconds:.1f} s")
        return "\n".join(lines)


def _mi_matrix(run: Any, checkpoint: str, bundle: Any, mi_images: int, n_jobs: int | None):
    """The run's MI matrix from ``metrics.json`` when it matches the checkpoint, else from val."""
    from csg_interp.metrics import extract_features, mutual_information_matrix

    path = Path(run.run_dir) / "metrics.json"
    if path.is_file():
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError:
            payload = {}
        if payload.get("checkpoint") == checkpoint and "mi_matrix" in payload:
            source = f"metrics.json ({payload.get('split')} split, N = {payload.get('n_mi')})"
            return np.asarray(payload["mi_matrix"], dtype=np.float64), source
    count = min(int(mi_images), len(bundle.val))
    features, labels = extract_features(
        run.net, bundle.val.subset(np.arange(count)), progress=False
    )
    mi = mutual_information_matrix(features, labels, run.net.num_classes, n_jobs=n_jobs)
    return mi, f"{count} validation images (no matching metrics.json)"


def _one_atlas(run: Any, bundle: Any, data: Any, checkpoint: str, options: dict[str, Any]):
    from csg_interp.metrics import gate_from_mi

    net = run.net
    count = min(int(options["threshold_images"]), len(bundle.val))
    val_x, _ = bundle.val.tensors(torch.arange(count))
    thresholds = filter_thresholds(
        gated_activations(net, val_x, options["batch_size"], options["device"])
    )
    mi, mi_source = _mi_matrix(run, checkpoint, bundle, options["mi_images"], options["n_jobs"])
    gate = net.gate.weight.detach() if net.gate is not None else gate_from_mi(mi)
    atlas = filter_atlas(
        net, data, thresholds, gate=gate, mi=mi, top_k=options["top_k"],
        min_gate=options["min_gate"], class_names=bundle.classes,
        batch_size=options["batch_size"], device=options["device"],
        progress=options["progress"],
    )  # fmt: skip
    atlas.info.update({
        "run_dir": str(run.run_dir),
        "kind": "csg" if net.gate is not None else "std",
        "gate": "learned" if net.gate is not None else "gate_from_mi of the MI matrix",
        "mi": mi_source,
        "thresholds": f"70th percentile of each filter's activations on {count} validation "
                      "images (filter_thresholds)",
    })  # fmt: skip
    unique = torch.unique(atlas.indices[atlas.indices >= 0])
    images, _ = data.tensors(unique)
    return atlas, {int(i): image for i, image in zip(unique.tolist(), images)}


def atlas_run(
    run_dir: str | os.PathLike,
    baseline: str | os.PathLike | None = None,
    *,
    split: str = "test",
    top_k: int = 9,
    min_gate: float = 0.5,
    threshold_images: int = 2000,
    mi_images: int = 2000,
    checkpoint: str = "last",
    device: str = "auto",
    data_root: str | None = None,
    batch_size: int = 256,
    n_jobs: int | None = -1,
    progress: bool = False,
) -> AtlasResult:
    """The filter atlas of a run (and its baseline) on its ``split``.

    Args:
        run_dir: a run directory (``csg-interp train``).
        baseline: a second run, usually the STD twin, atlased on the same images (an STD model
            through ``gate_from_mi`` of its MI matrix).
        split: ``test`` (default) or ``val``.
        top_k: images per filter.
        min_gate: ``G[c, k] >= min_gate`` means filter k serves class c.
        threshold_images: validation images for the thresholds t_k.
        mi_images: validation images for the MI matrix when the run has no ``metrics.json``
            of this checkpoint (``csg-interp evaluate`` writes one).
        checkpoint: ``last`` or ``best``.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        data_root: the data set's folder, if it moved since training.
        batch_size: images per forward pass.
        n_jobs: workers for the MI matrix.
        progress: progress bars.

    Returns:
        :class:`AtlasResult` (not yet saved: call ``save()``).

    Raises:
        ValueError: an unknown split, ``top_k < 1``.
        FileNotFoundError: no run directory or checkpoint.

    Example:
        >>> result = atlas_run("runs/csg", baseline="runs/std")  # doctest: +SKIP
        >>> path = result.save(); print(result.summary())        # doctest: +SKIP
    """
    from csg_interp.training import load_run

    if split not in ATLAS_SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(ATLAS_SPLITS)}")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    target = str(resolve_device(device))
    options = {"top_k": int(top_k), "min_gate": min_gate, "threshold_images": threshold_images,
               "mi_images": mi_images, "batch_size": batch_size, "device": target,
               "n_jobs": n_jobs, "progress": progress}  # fmt: skip
    overrides = {"data_root": data_root} if data_root else {}
    run = load_run(run_dir, checkpoint=checkpoint, device=target)
    bundle = run.load_data(**overrides)
    data = getattr(bundle, split)
    start = time.perf_counter()
    atlas, images = _one_atlas(run, bundle, data, checkpoint, options)
    result_images = {"run": images}
    base_atlas = None
    if baseline is not None:
        base = load_run(baseline, checkpoint=checkpoint, device=target)
        base_atlas, base_images = _one_atlas(base, bundle, data, checkpoint, options)
        result_images["baseline"] = base_images
    seconds = time.perf_counter() - start
    info = {
        "checkpoint": checkpoint,
        "dataset": run.config.dataset,
        "model": run.config.model,
        "device": target,
    }
    return AtlasResult(
        run_dir=Path(run_dir), split=split, atlas=atlas, baseline=base_atlas,
        baseline_dir=None if baseline is None else Path(baseline), images=result_images,
        seconds=seconds, info=info,
    )  # fmt: skip
