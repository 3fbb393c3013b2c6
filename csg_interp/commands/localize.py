"""Weakly supervised localization of a trained run (and optionally its baseline).

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

import argparse
import json
import time
from pathlib import Path
from typing import Any

HELP = "box localization metrics and overlays (GT-known/Top-1 Loc, MaxBoxAcc, mask IoU)"

#: Data sets whose splits carry ``boxes``/``masks`` extras.
BOXED_DATASETS: tuple[str, ...] = ("scenes", "voc-part")
#: Scenes built from plain items, per source: (canvas, scale, clutter size) matching the
#: item size the model was trained on.
SCENE_SETTINGS: dict[str, dict[str, Any]] = {
    "fashion-mnist": {"canvas": 64, "scale": (0.72, 1.28), "clutter_size": (14, 22)},
    "digits": {"canvas": 32, "scale": (1.0, 1.5), "clutter_size": (6, 10)},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (csg-interp train)")
    parser.add_argument(
        "--baseline", default=None, help="a second run (e.g. the STD twin) scored the same way"
    )
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument(
        "--methods", nargs="+", default=None,
        help="map methods (default: csg cam gradcam gradcam++; csg only on a model with a gate)",
    )  # fmt: skip
    parser.add_argument(
        "--val-size", type=int, default=500, help="validation images (threshold choice)"
    )
    parser.add_argument("--test-size", type=int, default=1000, help="test images scored")
    parser.add_argument("--sweep-step", type=float, default=0.01, help="MaxBoxAcc threshold step")
    parser.add_argument("--overlays", type=int, default=8, help="test images drawn per method")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/localize)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)


def run(args: argparse.Namespace) -> int:
    result = localize_runs(
        args.run_dir, baseline=args.baseline, checkpoint=args.checkpoint, methods=args.methods,
        val_size=args.val_size, test_size=args.test_size, sweep_step=args.sweep_step,
        overlays=args.overlays, out=args.out, device=args.device, batch_size=args.batch_size,
    )  # fmt: skip
    for name, model in result["models"].items():
        for method, metrics in model["methods"].items():
            print(
                f"{name:>8} {method:<10} GT-known Loc {metrics['gt_known_loc']:.3f}  "
                f"MaxBoxAcc v2 {metrics['max_box_acc_v2']:.3f}  mask IoU {metrics['mask_iou']:.3f}"
            )
    print(f"wrote {result['paths']['metrics']}")
    return 0


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


def localize_net(
    net: Any,
    val: Any,
    test: Any,
    methods: list[str] | None = None,
    sweep_step: float = 0.01,
    device: Any = "cpu",
    batch_size: int = 256,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score one network: ``({"top1_cls", "methods": {method: metrics}, "filters"}, test maps)``."""
    import torch

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
    thresholds = torch.arange(0.0, 1.0 - 1e-9, sweep_step, dtype=torch.float64)
    val_x, val_y = val.tensors()
    test_x, test_y = test.tensors()
    predictions = loc.predict(net, test_x, batch_size, device)
    summary: dict[str, Any] = {
        "top1_cls": float((predictions == test_y).float().mean()), "methods": {},
    }  # fmt: skip
    test_maps = {}
    for method in methods:
        start = time.perf_counter()
        val_maps = loc.localization_maps(net, val_x, val_y, method, batch_size, device)
        maps = loc.localization_maps(net, test_x, test_y, method, batch_size, device)
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


def save_overlays(
    images: Any, maps: Any, gt_boxes: Any, threshold: float, path: Path, scale: int = 3
) -> Path:
    """A grid of maps blended over the images with the true (green) and predicted (red) boxes."""
    import torch
    import torch.nn.functional as F
    from matplotlib import colormaps
    from torchvision.utils import draw_bounding_boxes, save_image

    from csg_interp._utils import min_max
    from csg_interp.attribution.boxes import boxes_from_maps

    predicted = boxes_from_maps(maps, threshold, mode="minmax")
    normalised = min_max(maps, start_dim=1)
    heat = torch.from_numpy(colormaps["jet"](normalised.numpy())[..., :3])
    heat = heat.permute(0, 3, 1, 2).float()
    grey = images.float().mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    blended = F.interpolate(0.55 * grey + 0.45 * heat, scale_factor=scale, mode="nearest")
    tiles = []
    for index in range(images.shape[0]):
        tile = (blended[index] * 255).round().to(torch.uint8)
        boxes = [gt_boxes[index] * scale]
        colors = ["lime"]
        if predicted.valid[index]:
            boxes.append(predicted.boxes[index] * scale)
            colors.append("red")
        tiles.append(draw_bounding_boxes(tile, torch.stack(boxes), colors=colors, width=2))
    save_image(torch.stack(tiles).float() / 255.0, path, nrow=min(8, len(tiles)), padding=2)
    return path


def localize_runs(
    run_dir: str,
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
) -> dict[str, Any]:
    """Score a run (and its baseline) on the same val/test images; write metrics.json + overlays.

    Returns:
        The dict written to ``metrics.json`` plus ``paths`` (what was written).
    """
    from csg_interp.training import load_run
    from csg_interp.training.trainer import resolve_device

    if val_size < 1 or test_size < 1:
        raise ValueError("--val-size and --test-size must be positive")
    if not 0.0 < sweep_step < 1.0:
        raise ValueError(f"--sweep-step must lie in (0, 1), got {sweep_step}")
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
                save_overlays(
                    images, maps[:count], test.extras["boxes"][:count],
                    summary["methods"][method]["threshold"], path,
                )  # fmt: skip
                paths["overlays"].append(str(path))
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(result, indent=2))
    paths["metrics"] = str(metrics_path)
    result["paths"] = paths
    return result
