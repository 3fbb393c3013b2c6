"""``localize``: weakly supervised localization of a run (and optionally its baseline).

Maps of the ground-truth class from every method (the CSG model's gate-weighted CAM, CAM,
Captum Grad-CAM, pytorch-grad-cam Grad-CAM++) are turned into boxes and scored: GT-known Loc and
Top-1 Loc at a threshold chosen on the validation split, Grad-CAM's fixed 15 % protocol,
MaxBoxAcc v1/v2, the CSG paper's mask IoU (CAM top 30 % and per-filter 70th percentile) and the
energy-based pointing game. A run trained on ``scenes`` or ``voc-part`` is scored on its own
val/test splits; a run trained on plain Fashion-MNIST (or digits) items is scored on scenes built
from its val/test items (the network is fully convolutional with global pooling, so it runs on
the larger canvas). Writes ``metrics.json`` and overlay PNGs (true box green, predicted red) to
``RUN_DIR/localize/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csg_interp._utils import resolve_device, write_json_atomic
from csg_interp.plotting.overlays import save_box_overlays

from ._result import RunResult

__all__ = [
    "BOXED_DATASETS",
    "SCENE_SETTINGS",
    "LocalizeResult",
    "localization_data",
    "localize_net",
    "sweep_thresholds",
    "localize_run",
    "localize_runs",
]

#: Data sets whose splits carry ``boxes``/``masks`` extras.
BOXED_DATASETS: tuple[str, ...] = ("scenes", "voc-part")
#: Scenes built from plain items, per source: (canvas, scale, clutter size) matching the
#: item size the model was trained on.
SCENE_SETTINGS: dict[str, dict[str, Any]] = {
    "fashion-mnist": {"canvas": 64, "scale": (0.72, 1.28), "clutter_size": (14, 22)},
    "digits": {"canvas": 32, "scale": (1.0, 1.5), "clutter_size": (6, 10)},
}


@dataclass
class LocalizeResult(RunResult):
    """Localization scores of a run (and its baseline) on the same images.

    Attributes:
        metrics: ``protocol``, ``data`` and ``models`` (per model: ``top1_cls``, ``run``,
            ``methods`` → scores per map method, ``filters`` → the per-filter protocol).
        paths: what was written: ``metrics`` (the JSON file) and ``overlays`` (PNG files).
    """

    FILENAME = "localize/metrics.json"

    metrics: dict[str, Any]
    paths: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.metrics

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> LocalizeResult:
        overlays = sorted(str(p) for p in path.parent.glob("overlays_*.png"))
        return cls(payload, {"metrics": str(path), "overlays": overlays})

    def save_to(self, folder: str | os.PathLike) -> Path:
        """Write ``metrics.json`` atomically into ``folder`` (``save`` uses RUN_DIR/localize)."""
        return write_json_atomic(Path(folder) / "metrics.json", self.metrics, indent=2)

    def summary(self) -> str:
        lines = []
        for name, model in self.metrics["models"].items():
            for method, scores in model["methods"].items():
                lines.append(
                    f"{name:>8} {method:<10} GT-known Loc {scores['gt_known_loc']:.3f}  "
                    f"MaxBoxAcc v2 {scores['max_box_acc_v2']:.3f}  "
                    f"mask IoU {scores['mask_iou']:.3f}"
                )
        if "metrics" in self.paths:
            lines.append(f"wrote {self.paths['metrics']}")
        return "\n".join(lines)


def localization_data(run: Any, val_size: int, test_size: int):
    """The (val, test) :class:`~csg_interp.data.ArrayDataset` pair with boxes and masks for a run.

    Raises:
        ValueError: the run's data set has no boxes and no scenes can be built from it.
    """
    from csg_interp.data.scenes import load_scenes

    config = run.config
    if config.dataset in BOXED_DATASETS:
        bundle = run.load_data()
        return bundle.val, bundle.test, {"dataset": config.dataset, "scenes_from_items": False}
    if config.dataset in SCENE_SETTINGS:
        settings = SCENE_SETTINGS[config.dataset]
        bundle = load_scenes(
            data_root=config.data_root, seed=config.data_seed, source=config.dataset,
            train_size=1, val_size=val_size, test_size=test_size, **settings,
        )  # fmt: skip
        info = {
            "dataset": f"scenes from {config.dataset} val/test items",
            "scenes_from_items": True,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        }
        return bundle.val, bundle.test, info
    raise ValueError(
        f"the run was trained on {config.dataset!r}, which has no boxes; localize needs a run "
        f"trained on {', '.join(BOXED_DATASETS)}, or on {', '.join(SCENE_SETTINGS)} (scored on "
        "scenes built from its items)"
    )


def _first(dataset: Any, count: int) -> Any:
    return dataset if count >= len(dataset) else dataset.subset(list(range(count)))


def sweep_thresholds(step: float) -> Any:
    """The min-max threshold sweep ``0, step, 2·step, ... < 1`` (float64) that
    :func:`localize_net` chooses each method's threshold from on val.

    Example:
        >>> sweep_thresholds(0.25).tolist()
        [0.0, 0.25, 0.5, 0.75]
    """
    import torch

    return torch.arange(0.0, 1.0 - 1e-9, step, dtype=torch.float64)


def localize_net(
    net: Any,
    val: Any,
    test: Any,
    methods: list[str] | None = None,
    sweep_step: float = 0.01,
    device: Any = "cpu",
    batch_size: int = 256,
    extra_methods: Mapping[str, Callable[[Any, Any], Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score one network with every method: thresholds on val, metrics on test.

    Args:
        net: the network (a :class:`~csg_interp.training.CSGNet`).
        val, test: scene splits with ``extras["boxes"]`` and ``extras["masks"]``.
        methods: names from ``LOCALIZATION_METHODS`` (default: all; ``csg`` is dropped for a
            model without a gate).
        sweep_step: step of the min-max threshold sweep (:func:`sweep_thresholds`).
        device, batch_size: where and how many images at a time.
        extra_methods: more methods to score the same way, name -> ``maps(images, targets)``
            returning (N, H, W) ground-truth-class maps at image resolution.

    Returns:
        ``(summary, test maps)``: ``summary`` has ``top1_cls``, ``methods`` (name -> the metrics
        of ``evaluate_maps`` plus ``seconds``) and ``filters`` (the per-filter protocol);
        ``test maps`` maps each method to its (N, H, W) test maps.
    """
    from csg_interp.attribution import localization as loc

    if methods is None:
        methods = list(loc.LOCALIZATION_METHODS)
    unknown = [m for m in methods if m not in loc.LOCALIZATION_METHODS]
    if unknown:
        raise ValueError(
            f"unknown method(s) {', '.join(unknown)}; use {', '.join(loc.LOCALIZATION_METHODS)}"
        )
    if net.gate is None:
        methods = [m for m in methods if m != "csg"]
    clashes = sorted(set(extra_methods or {}) & set(loc.LOCALIZATION_METHODS))
    if clashes:
        raise ValueError(f"extra_methods must not reuse built-in names: {', '.join(clashes)}")
    makers: dict[str, Callable[[Any, Any], Any]] = {
        method: (
            lambda images, targets, method=method: loc.localization_maps(
                net, images, targets, method, batch_size, device
            )
        )
        for method in methods
    }
    makers.update(extra_methods or {})
    thresholds = sweep_thresholds(sweep_step)
    val_x, val_y = val.tensors()
    test_x, test_y = test.tensors()
    predictions = loc.predict(net, test_x, batch_size, device)
    summary: dict[str, Any] = {
        "top1_cls": float((predictions == test_y).float().mean()), "methods": {},
    }  # fmt: skip
    test_maps = {}
    for method, make_maps in makers.items():
        start = time.perf_counter()
        val_maps, maps = make_maps(val_x, val_y), make_maps(test_x, test_y)
        metrics = loc.evaluate_maps(
            val_maps, val.extras["boxes"], maps, test.extras["boxes"], test.extras["masks"],
            test_y, predictions, thresholds=thresholds,
        )  # fmt: skip
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        summary["methods"][method] = metrics
        test_maps[method] = maps
    summary["filters"] = loc.evaluate_filters(
        net, val_x, test_x, test.extras["masks"], test_y, batch_size, device
    )
    return summary, test_maps


def localize_run(
    run_dir: str | os.PathLike,
    baseline: str | None = None,
    checkpoint: str = "last",
    methods: list[str] | None = None,
    val_size: int = 500,
    test_size: int = 1000,
    sweep_step: float = 0.01,
    overlays: int = 8,
    out: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
) -> LocalizeResult:
    """Score a run (and its baseline) on the same val/test images; write metrics.json + overlays.

    Maps of the ground-truth class from every method are turned into boxes and scored: GT-known
    and Top-1 Loc at a threshold chosen on the validation split, MaxBoxAcc v1/v2, the CSG paper's
    mask IoU (``docs/method.md`` §6a) and the energy-based pointing game
    (``docs/localization.md``).

    Args:
        run_dir: a run directory (``csg-interp train``).
        baseline: a second run (e.g. the STD twin) scored on the same images.
        checkpoint: ``last`` or ``best``.
        methods: map methods (default
            :data:`~csg_interp.attribution.localization.LOCALIZATION_METHODS`; ``csg`` only on a
            model with a gate).
        val_size: validation images (threshold choice).
        test_size: test images scored.
        sweep_step: the MaxBoxAcc threshold step, in (0, 1).
        overlays: test images drawn per method.
        out: the output folder (default ``RUN_DIR/localize``).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        batch_size: images per forward pass.

    Returns:
        A :class:`LocalizeResult` (``metrics`` is what ``metrics.json`` holds, ``paths`` what was
        written).

    Raises:
        ValueError: bad sizes or step, an unknown method, a data set without boxes.

    Example:
        >>> print(localize_run("runs/csg", baseline="runs/std").summary())  # doctest: +SKIP
    """
    from csg_interp.training import load_run

    if val_size < 1 or test_size < 1:
        raise ValueError("--val-size and --test-size must be positive")
    if not 0.0 < sweep_step < 1.0:
        raise ValueError(f"--sweep-step must lie in (0, 1), got {sweep_step}")
    from csg_interp.errors import check_output_parent, check_positive_int
    from csg_interp.training.runs import check_same_data

    check_positive_int(batch_size, "batch_size")
    check_positive_int(overlays, "overlays", minimum=0)
    if out is not None:
        check_output_parent(out, "out")
    if baseline is not None:
        check_same_data(run_dir, baseline, "baseline")
    device = resolve_device(device)
    runs = {"main": load_run(run_dir, checkpoint, device=device)}
    if baseline is not None:
        runs["baseline"] = load_run(baseline, checkpoint, device=device)
    val, test, data_info = localization_data(runs["main"], val_size, test_size)
    val, test = _first(val, val_size), _first(test, test_size)
    out_dir = Path(out) if out else Path(run_dir) / "localize"
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "protocol": {
            "box_format": "xyxy pixel-edge",
            "maps": "ground-truth class, upsampled bilinearly to the image size",
            "threshold_choice": "min-max threshold maximising box accuracy (IoU >= 0.5, largest "
            "component) on the val split; applied unchanged to test",
            "max_box_acc": "wsolevaluation v1 (IoU 0.5, largest component) and v2 (mean over IoU "
            "0.3/0.5/0.7, best component), maximum over the sweep on test",
            "sweep_step": sweep_step,
            "mask_iou": "CSG paper: top 30 % of pixels, hit when IoU > 0.3",
            "filters": "CSG paper: each filter at its 70th percentile (from val), hit when "
            "IoU > 0.3",
        },
        "data": {**data_info, "val_images": len(val), "test_images": len(test)},
        "models": {},
    }
    paths: dict[str, Any] = {"overlays": []}
    for role, loaded in runs.items():
        name = "csg" if loaded.net.gate is not None else "std"
        if name in result["models"]:
            name = f"{name}_{role}"
        summary, test_maps = localize_net(
            loaded.net, val, test, methods, sweep_step, device, batch_size
        )
        summary["run"] = str(loaded.run_dir)
        result["models"][name] = summary
        count = min(overlays, len(test))
        if count:
            images = test.tensors()[0][:count]
            for method, maps in test_maps.items():
                path = out_dir / f"overlays_{name}_{method.replace('+', 'p')}.png"
                save_box_overlays(
                    images, maps[:count], test.extras["boxes"][:count],
                    summary["methods"][method]["threshold"], path,
                )  # fmt: skip
                paths["overlays"].append(str(path))
    outcome = LocalizeResult(result, paths)
    paths["metrics"] = str(outcome.save_to(out_dir))
    return outcome


def localize_runs(run_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`localize_run` as a dict: the ``metrics.json`` payload plus ``paths`` (the old API)."""
    outcome = localize_run(run_dir, *args, **kwargs)
    return {**outcome.metrics, "paths": outcome.paths}
