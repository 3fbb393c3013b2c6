"""Why the extension's class maps localise worse on scenes: a diagnosis on the committed models.

What it measures. The localization protocol (experiments/localization_full.py) finds that the
library's extension (``own01``: the joint objective plus owner separation) localises the object
worse than the paper's CSG network with every gradient-weighted map, although its filters, one at a
time, localise as well or better (filter AP). This script looks at *how* the maps miss, on the
committed models of each seed -- the paper's CSG network (``csg_s<seed>``), the extension's
(``own01_s<seed>``) and their STD twin (``std_s<seed>``) -- on the protocol's 2000 test scenes, for
CAM and Grad-CAM++ maps of the true class, each at the min-max threshold the protocol chose on val
(read from its committed JSON):

* ``hits_match``: the recomputed GT-known hits equal the committed ones (the maps analysed here
  are the maps that were scored);
* box size: predicted / true box area (median over the images), the mean share of the true box
  the predicted box covers (``recall``) and of the predicted box that lies in the true box
  (``precision``); the misses (IoU < 0.5) split into *too small* (under half the true box's area),
  *too large* (over twice) and *other* (about the right size, misplaced or misshapen), each as a
  share of all test images;
* energy: the share of each (min-max scaled) map's mass on the object's box, on the distractor
  digits (pixels outside the box at or above the scenes' mask level, 0.05) and on the background;
* concentration of the class map over the filters: the positive per-filter contributions to the
  map's spatial mean, ``p_k = w_k·mean(A_k)`` (CAM: ``w_k`` is the head weight of the class;
  Grad-CAM++: its per-filter weight), summarised per image as the effective number of filters
  (participation ratio ``(Σ p_k)² / Σ p_k²``) and the top filter's share ``max p_k / Σ p_k``.

This is a diagnosis -- it says where the maps go, not which training term sends them there.

Resumable: a seed whose JSON exists is skipped. Results:
``experiments/results/localization/why/s<seed>.json`` (with the git revision); the table of
docs/localization.md is ``python experiments/localization_why.py --summary``.

Usage::

    python experiments/localization_why.py               # every seed with committed models
    python experiments/localization_why.py --only s0
    python experiments/localization_why.py --summary     # the Markdown table of the results

Sources: Zhou et al., CAM, CVPR 2016; Chattopadhay et al., *Grad-CAM++*, WACV 2018 (via the
``pytorch-grad-cam`` package); Liang et al., ECCV 2020 (the CSG network, filter AP).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from full_accuracy import compute_lock, git_revision  # noqa: E402
from localization_full import PROTOCOLS, decode_hits, selected_seeds  # noqa: E402

#: Committed models and the protocol's results.
MODELS_DIR = HERE / "models" / "localization"
RESULTS_DIR = HERE / "results" / "localization"
OUT_DIR = RESULTS_DIR / "why"
#: The networks compared, as (name in the table, run-directory prefix, results folder, key of the
#: model in that folder's JSON).
NETWORKS: tuple[tuple[str, str, str, str], ...] = (
    ("paper's csg", "csg", "full", "csg"),
    ("own01", "own01", "full_own01", "csg"),
    ("std twin", "std", "full", "std"),
)
METHODS: tuple[str, ...] = ("cam", "gradcam++")
#: Pixels outside the object's box at or above this level (in [0, 1]) are distractor digits: the
#: scenes' default ``mask_threshold`` (csg_interp.data.scenes.compose_scenes).
DISTRACTOR_LEVEL = 0.05
#: A miss whose box is under ``1 / SIZE_FACTOR`` of the true box's area is "too small", over
#: ``SIZE_FACTOR`` times "too large".
SIZE_FACTOR = 2.0


# ---------------------------------------------------------------------------- the measures
def participation_ratio(contributions: np.ndarray) -> np.ndarray:
    """Effective number of filters of each row: ``(Σ p)² / Σ p²`` over the positive parts.

    Args:
        contributions: (N, K) per-filter contributions; negative ones are dropped.

    Returns:
        (N,) float; NaN for a row without a positive contribution.

    Example:
        >>> participation_ratio(np.array([[1.0, 1.0, 0.0, -3.0], [2.0, 0.0, 0.0, 0.0]])).tolist()
        [2.0, 1.0]
    """
    p = np.clip(np.asarray(contributions, dtype=np.float64), 0.0, None)
    total, squares = p.sum(axis=1), (p**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(squares > 0, total**2 / np.where(squares > 0, squares, 1.0), np.nan)


def top_share(contributions: np.ndarray) -> np.ndarray:
    """The largest positive contribution's share of the positive sum, per row (NaN if none).

    Example:
        >>> top_share(np.array([[3.0, 1.0, -5.0]])).tolist()
        [0.75]
    """
    p = np.clip(np.asarray(contributions, dtype=np.float64), 0.0, None)
    total = p.sum(axis=1)
    return np.where(total > 0, p.max(axis=1) / np.where(total > 0, total, 1.0), np.nan)


def energy_split(
    maps: Tensor, boxes: Tensor, images: Tensor, level: float = DISTRACTOR_LEVEL
) -> np.ndarray:
    """Share of each map's mass on the object's box, the distractors and the background.

    Args:
        maps: (N, H, W) non-negative maps at image resolution.
        boxes: (N, 4) true boxes, xyxy pixel-edge.
        images: (N, 1, H, W) or (N, H, W) scenes in [0, 1]: distractor pixels are those outside
            the box at or above ``level``.
        level: the distractor level.

    Returns:
        (N, 3) float: box, distractors, background (rows sum to 1; NaN for an all-zero map).

    Example:
        >>> maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
        >>> images = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
        >>> energy_split(maps, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), images).tolist()
        [[0.25, 0.5, 0.25]]
    """
    from csg_interp.attribution.boxes import boxes_to_masks

    maps = maps.double()
    in_box = boxes_to_masks(boxes, maps.shape[-2:])
    pixels = images.reshape(maps.shape).double()
    distractor = (pixels >= level) & ~in_box
    background = ~in_box & ~distractor
    total = maps.sum(dim=(1, 2))
    parts = [(maps * region).sum(dim=(1, 2)) / total for region in (in_box, distractor, background)]
    return torch.stack(parts, dim=1).numpy()


def box_diagnosis(maps: Tensor, boxes: Tensor, threshold: float) -> dict[str, np.ndarray]:
    """Per image: the box the protocol draws from a map and how it relates to the true box.

    Args:
        maps: (N, H, W) maps of the true class at image resolution.
        boxes: (N, 4) true boxes, xyxy pixel-edge.
        threshold: the min-max threshold (the protocol's val choice).

    Returns:
        ``iou``, ``area_ratio`` (predicted / true area; 0 when no box is found), ``recall``
        (intersection / true area), ``precision`` (intersection / predicted area; 0 when no box),
        ``hit`` (IoU ≥ 0.5), each (N,).

    Example:
        >>> maps = torch.zeros(1, 8, 8); maps[0, 0:2, 0:4] = 1.0
        >>> d = box_diagnosis(maps, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), 0.5)
        >>> [float(d[k][0]) for k in ("iou", "area_ratio", "recall", "precision")]
        [0.5, 0.5, 0.5, 1.0]
    """
    from torchvision.ops import box_area

    from csg_interp.attribution.boxes import boxes_from_maps, paired_box_iou

    found = boxes_from_maps(maps, threshold, mode="minmax")
    predicted = found.boxes.double()
    truth = boxes.double()
    iou = paired_box_iou(predicted, truth) * found.valid
    area_p = box_area(predicted) * found.valid
    area_t = box_area(truth)
    inter = iou * (area_p + area_t) / (1.0 + iou)  # from IoU = I / (A + B - I)
    safe_p = torch.where(area_p > 0, area_p, torch.ones_like(area_p))
    return {
        "iou": iou.numpy(), "area_ratio": (area_p / area_t).numpy(),
        "recall": (inter / area_t).numpy(),
        "precision": torch.where(area_p > 0, inter / safe_p, torch.zeros_like(inter)).numpy(),
        "hit": (iou >= 0.5).numpy(),
    }  # fmt: skip


def miss_kinds(diagnosis: dict[str, np.ndarray], factor: float = SIZE_FACTOR) -> dict[str, float]:
    """The misses as shares of all images: too small, too large, or about the right size.

    Example:
        >>> d = {"hit": np.array([True, False, False, False]),
        ...      "area_ratio": np.array([1.0, 0.2, 3.0, 1.1])}
        >>> miss_kinds(d)
        {'too_small': 0.25, 'too_large': 0.25, 'other': 0.25}
    """
    miss, ratio = ~diagnosis["hit"], diagnosis["area_ratio"]
    small, large = miss & (ratio < 1.0 / factor), miss & (ratio > factor)
    return {
        "too_small": float(small.mean()), "too_large": float(large.mean()),
        "other": float((miss & ~small & ~large).mean()),
    }  # fmt: skip


# ------------------------------------------------------------------------- maps and weights
def gradcam_plus_plus_with_weights(
    net: Any, images: Tensor, targets: Tensor, batch_size: int = 256
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """Grad-CAM++ maps (as the protocol scores them) and, per image, its filter weights and the
    gated layer's spatial means.

    Returns:
        ``(maps (N, H, W), weights (N, K), mean activations (N, K))``.
    """
    from pytorch_grad_cam import GradCAMPlusPlus

    from csg_interp.attribution.localization import localization_maps

    weights: list[np.ndarray] = []
    means: list[np.ndarray] = []

    class Recording(GradCAMPlusPlus):
        def get_cam_weights(self, input_tensor, target_layers, targets, activations, grads):
            w = super().get_cam_weights(input_tensor, target_layers, targets, activations, grads)
            weights.append(np.asarray(w, dtype=np.float64))
            means.append(np.asarray(activations, dtype=np.float64).mean(axis=(2, 3)))
            return w

    maps = localization_maps(net, images, targets, "gradcam++", batch_size, "cpu", Recording)
    return maps, np.concatenate(weights), np.concatenate(means)


def method_record(
    maps: Tensor, contributions: np.ndarray, test: Any, threshold: float, committed: np.ndarray
) -> dict[str, Any]:
    """Every measure of one method on one network (see the module docstring)."""
    images, _ = test.tensors()
    boxes = test.extras["boxes"]
    diagnosis = box_diagnosis(maps, boxes, threshold)
    energy = energy_split(maps, boxes, images)
    effective = participation_ratio(contributions)
    hit = diagnosis["hit"]
    return {
        "threshold": threshold, "gt_known": float(hit.mean()),
        "hits_match": bool(np.array_equal(hit, committed)),
        "area_ratio_median": float(np.median(diagnosis["area_ratio"])),
        "recall_mean": float(diagnosis["recall"].mean()),
        "precision_mean": float(diagnosis["precision"].mean()),
        "misses": miss_kinds(diagnosis),
        "energy": dict(zip(("box", "distractors", "background"),
                           np.nanmean(energy, axis=0).tolist())),
        "filters_effective": float(np.nanmean(effective)),
        "filters_effective_hits": float(np.nanmean(effective[hit])) if hit.any() else None,
        "filters_effective_misses": float(np.nanmean(effective[~hit])) if (~hit).any() else None,
        "top_filter_share": float(np.nanmean(top_share(contributions))),
    }  # fmt: skip


def analyse_network(run_dir: Path, protocol_json: dict[str, Any], model_key: str) -> dict[str, Any]:
    """Load one committed model and measure CAM and Grad-CAM++ on its test scenes."""
    from csg_interp.attribution.localization import localization_maps, predict
    from csg_interp.training import load_run

    run = load_run(run_dir)
    # Every scene split has its own generation seed: 64 training scenes give the same test set.
    test = run.load_data(train_subset=64).test
    images, labels = test.tensors()
    net = run.net
    start = time.perf_counter()
    accuracy = float((predict(net, images) == labels).float().mean())
    gpp_maps, gpp_weights, means = gradcam_plus_plus_with_weights(net, images, labels)
    cam_maps = localization_maps(net, images, labels, "cam")
    head = net.linear_head.weight.detach().double().numpy()[labels.numpy()]
    record: dict[str, Any] = {"run": run_dir.name, "test_accuracy": accuracy, "methods": {}}
    for method, maps, contributions in (
        ("cam", cam_maps, head * means), ("gradcam++", gpp_maps, gpp_weights * means),
    ):  # fmt: skip
        key = f"{model_key}/{method}"
        record["methods"][method] = method_record(
            maps, contributions, test, protocol_json["thresholds_chosen"][key],
            decode_hits(protocol_json["hits"][key]),
        )
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def analyse_seed(seed: int) -> dict[str, Any]:
    """Every network of one seed; the seed's JSON payload."""
    networks = {}
    for name, prefix, folder, key in NETWORKS:
        run_dir = MODELS_DIR / f"{prefix}_s{seed}"
        protocol_json = json.loads((RESULTS_DIR / folder / f"s{seed}.json").read_text())
        print(f"[net ] s{seed} {name} at {time.strftime('%H:%M:%S')}", flush=True)
        networks[name] = analyse_network(run_dir, protocol_json, key)
    return {
        "seed": seed, "git": git_revision(), "networks": networks,
        "distractor_level": DISTRACTOR_LEVEL, "size_factor": SIZE_FACTOR,
        "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


def available_seeds() -> list[int]:
    """The protocol's seeds whose three committed models and two result JSONs all exist."""
    return [
        seed for seed in PROTOCOLS["full"]["seeds"]
        if all((MODELS_DIR / f"{prefix}_s{seed}" / "last.pt").is_file()
               and (RESULTS_DIR / folder / f"s{seed}.json").is_file()
               for _, prefix, folder, _ in NETWORKS)
    ]  # fmt: skip


# ------------------------------------------------------------------------------- the table
def summary(folder: Path = OUT_DIR) -> str:
    """The Markdown table of docs/localization.md: means over the seeds in ``folder``."""
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("s*.json"))]
    if not results:
        raise SystemExit(f"no results in {folder} yet; run python experiments/localization_why.py")
    seeds = ",".join(str(r["seed"]) for r in results)

    def mean(name: str, method: str, pick: Any) -> float:
        return float(np.mean([pick(r["networks"][name]["methods"][method]) for r in results]))

    lines = [
        f"### How the maps miss (seeds {seeds}; means over the seeds, 2000 test scenes each)", "",
        "| network / method | GT-known Loc | box area / true (median) | recall | precision | "
        "misses: too small / too large / other (%) | energy: box / distractors / background (%) "
        "| effective filters (hits / misses) | top filter's share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, *_ in NETWORKS:
        for method in METHODS:
            m = {key: mean(name, method, lambda r, key=key: r[key]) for key in (
                "gt_known", "area_ratio_median", "recall_mean", "precision_mean",
                "filters_effective", "top_filter_share")}  # fmt: skip
            misses = [mean(name, method, lambda r, k=k: r["misses"][k])
                      for k in ("too_small", "too_large", "other")]  # fmt: skip
            energy = [mean(name, method, lambda r, k=k: r["energy"][k])
                      for k in ("box", "distractors", "background")]  # fmt: skip
            split = [mean(name, method, lambda r, k=k: r[k])
                     for k in ("filters_effective_hits", "filters_effective_misses")]  # fmt: skip
            lines.append(
                f"| {name} / {method} | {100 * m['gt_known']:.1f} | {m['area_ratio_median']:.2f} | "
                f"{m['recall_mean']:.2f} | {m['precision_mean']:.2f} | "
                f"{' / '.join(f'{100 * v:.1f}' for v in misses)} | "
                f"{' / '.join(f'{100 * v:.1f}' for v in energy)} | "
                f"{m['filters_effective']:.1f} ({split[0]:.1f} / {split[1]:.1f}) | "
                f"{m['top_filter_share']:.2f} |"
            )
    matched = all(
        method["hits_match"] for r in results for net in r["networks"].values()
        for method in net["methods"].values()
    )  # fmt: skip
    lines += ["", "Recomputed hits equal the committed ones for every network, method and seed: "
              f"{'yes' if matched else 'NO'}."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Analyse every available seed without a JSON (one at a time), or print the table.

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated seeds (s0,s2 or 0,2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--summary", action="store_true", help="print the Markdown table")
    parser.add_argument("--no-lock", action="store_true", help="do not hold the compute lock")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary())
        return 0
    from csg_interp._utils import write_json_atomic

    torch.set_num_threads(args.threads)
    wanted = selected_seeds("full", args.only)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for seed in available_seeds():
        target = OUT_DIR / f"s{seed}.json"
        if seed not in wanted or target.exists():
            continue
        with contextlib.nullcontext() if args.no_lock else compute_lock():
            result = analyse_seed(seed)
        write_json_atomic(target, result, indent=1)
        print(f"[done] s{seed} -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
