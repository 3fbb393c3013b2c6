"""Localization on scenes with good classifiers: CSG maps and gated Grad-CAM++ vs CAM family.

What it measures. Weakly supervised localization on the library's scenes
(``load_dataset("scenes")`` with today's defaults: one Fashion-MNIST item of 20–36 px among 1–3
distractor digits on a 64×64 canvas, docs/localization.md) by a CSG model (the ``scratch``
preset: the paper's alternating STD/CSG epochs) and its STD twin (``gate=False``), same data and
seed, at an accuracy where the comparison means something: the committed benchmark pair
(benchmarks/bench_localization.py) classifies scenes at 41–48 %, this protocol aims at ≥ 90 %.
Per seed, on the test scenes, with every threshold chosen on the val scenes only:

* GT-known Loc (box of the true class's map, min-max threshold, IoU ≥ 0.5) and Top-1 Loc, plus
  the rest of ``csg_interp.workflows.localize.localize_net``'s protocol (MaxBoxAcc v1/v2, mask
  IoU, pointing game), for ``csg`` (CSGAttribution on the CSG model) and ``cam``, ``gradcam``,
  ``gradcam++`` on both models;
* the extension proposed in docs/localization.md, **gated Grad-CAM++** (``gated_gradcam++``, CSG
  model only): Grad-CAM++ whose per-filter weights ``w_k^c`` are multiplied by the gate row of
  the target class, ``Σ_k G[c, k]·w_k^c·A_k`` (then ReLU and min-max scaling, as Grad-CAM++);
* the paired bootstrap 95 % interval (2000 resamples of the test images) of GT-known Loc of the
  best CSG-side method (``csg`` or ``gated_gradcam++``) minus the best other method (any model),
  per seed and pooled over the seeds (``pooled.json``: per image, the hits averaged over the
  seeds -- every seed scores the same test scenes -- then images resampled). The best methods
  are picked on test, as the benchmark does;
* the paper's per-filter protocol (filter AP: each filter binarised at its 70th percentile from
  val, hit when IoU > 0.3, each filter on its best class) for both models;
* scene classification accuracy on the test scenes, gate density, wall times, scene counts.

The gated model can also be the library's extension (``--gated own01``: the joint objective
plus the owner-separation term at weight 0.1, ``TrainConfig(schedule="joint",
owner_separation=0.1)``, the setting that beat the paper's method on Fashion-MNIST, not retuned
for scenes). It is compared with the same STD twin, whose run directory both gated variants of a
seed share (the second only reloads and rescores it); its JSON keys the gated model ``csg`` as
well and records ``gated_variant``; results go to ``results/localization/<protocol>_own01/``.
Its ``pooled.json`` also holds ``against_paper``: every method on the extension's network minus
the same method on the paper's CSG network, at the seeds both have (same scenes, same test
images: a paired bootstrap as above), read from the paper's results (``--paper-results``).

Targets (recorded, not acted on): both models ≥ 0.90 test accuracy on scenes
(``accuracy_target_met``); best CSG-side − best other ≥ +5 points GT-known Loc with the interval
excluding 0 (``comparison.target_met``).

Protocols: ``full`` -- 50 000 training scenes (the loader allows up to the 55 000 Fashion-MNIST
training items left after its 5000-item validation split), 1000 val and 2000 test scenes,
ResNet-8 at its full widths 16/32/64 (K = 64), the preset's 12 epochs and batch 128, seeds 0, 1,
2, NHWC memory format (``channels_last``: the same recipe, faster steps on CPU, floats differ
only by rounding); ``smoke`` -- a few hundred scenes, 2 epochs, a narrow ResNet-8 (checks the
pipeline, measures nothing). Scenes reach the trainer through ``TrainConfig``: ``dataset="scenes"``,
``train_subset`` and ``val_size`` (scene counts of those splits) and
``data_options={"test_size": ...}``; the data seed stays 0, so every seed and both models see the
same scenes.

Resumable: a seed whose JSON exists is skipped; a run directory without JSON resumes from its
``last.pt`` (the trainer's exact resume; a finished run only reloads). Results:
``experiments/results/localization/<protocol>/s<seed>.json`` (with the git revision) and
``pooled.json``; run directories: ``experiments/runs/localization/<protocol>/`` (not committed).
The ``full`` protocol holds the compute lock of experiments/full_accuracy.py
(``$CSG_COMPUTE_LOCK``) so that nothing heavy runs beside it.

Usage::

    python experiments/localization_full.py                      # the full protocol (hours)
    python experiments/localization_full.py --protocol smoke --results /tmp/r --runs /tmp/runs
    python experiments/localization_full.py --only s1,s2 --device cuda
    python experiments/localization_full.py --gated own01 --only s0   # the extension, seed 0

Measured cost (seed 0, 2026-12-02, 2 threads of an AMD EPYC, NHWC, nothing else running):
50 min to train the CSG model, 29 min the STD twin (its epochs skip the gated path), 4 and 2 min
of maps and scoring (Grad-CAM++ ≈ 1.5–2× a CAM); 84 min for the seed. Seed 1 (2026-12-07, the
same machine on a slower day: 330–385 s a CSG-model epoch against ≈ 250 s): 74 and 46 min of
training, 5 and 3 min of scoring, 127 min for the seed. Seed 2 (2026-12-07, over two sittings,
resumed from the CSG model's ``last.pt``): 72 and 49 min of training, 5 and 3 min of scoring.

Sources: Liang et al., *Training Interpretable Convolutional Neural Networks by Differentiating
Class-specific Filters*, ECCV 2020 (CSG, the per-filter protocol); Chattopadhay et al.,
*Grad-CAM++*, WACV 2018 (via the ``pytorch-grad-cam`` package); Zhou et al., CAM, CVPR 2016;
Selvaraju et al., Grad-CAM, ICCV 2017; Choe et al., *Evaluating Weakly Supervised Object
Localization Methods Right*, CVPR 2020 (threshold sweep, MaxBoxAcc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(HERE))
from bench_localization import TARGET_POINTS  # noqa: E402
from full_accuracy import compute_lock, git_revision  # noqa: E402

from csg_interp.training import TrainConfig, fit, load_bundle  # noqa: E402

if TYPE_CHECKING:
    from csg_interp.data import ArrayDataset, DataBundle
    from csg_interp.training import CSGNet, Run

#: ``full``: enough scenes for good classifiers; ``smoke``: seconds, checks the pipeline only.
#: ``epochs``/``batch_size`` ``None`` take the ``scratch`` preset's values (12, 128).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "full": {
        "train_scenes": 50_000, "val_scenes": 1000, "test_scenes": 2000, "epochs": None,
        "batch_size": None, "widths": [16, 32, 64], "seeds": [0, 1, 2], "sweep_step": 0.01,
        "resamples": 2000, "channels_last": True,
    },
    "smoke": {
        "train_scenes": 256, "val_scenes": 64, "test_scenes": 96, "epochs": 2,
        # Widths 8/8/16 abort inside torch's CPU backward (oneDNN) on an AMX Xeon with torch
        # 2.14.1; 16/16/32 does not, and the smoke protocol measures nothing either way.
        "batch_size": 32, "widths": [16, 16, 32], "seeds": [0, 1], "sweep_step": 0.05,
        "resamples": 200, "channels_last": False,
    },
}  # fmt: skip
#: TrainConfig overrides of the ``scratch`` preset. ``csg``: the paper's alternating STD/CSG
#: epochs; ``own01``: the library's extension that won on Fashion-MNIST (docs/metrics.md), the
#: joint objective plus the owner-separation term at weight 0.1, not retuned for scenes; ``std``:
#: the twin without a gate. A seed trains one gated variant (``--gated``) and the STD twin.
VARIANTS: dict[str, dict[str, Any]] = {
    "csg": {"gate": True},
    "own01": {"gate": True, "schedule": "joint", "owner_separation": 0.1},
    "std": {"gate": False},
}
#: The variants ``--gated`` may pick as a seed's gated model.
GATED_VARIANTS: tuple[str, ...] = ("csg", "own01")
#: The two models of a seed, as its JSON keys them: the gated model (whichever variant) and
#: the STD twin.
MODELS: tuple[str, ...] = ("csg", "std")
#: The extension's method name (scored on the CSG model only).
GATED_METHOD = "gated_gradcam++"
#: Methods that use the gate, as ``model/method`` keys; every other key is an "other" method.
CSG_SIDE: tuple[str, ...] = ("csg/csg", f"csg/{GATED_METHOD}")
#: Scene classification accuracy both models should reach for the comparison to count.
ACCURACY_TARGET = 0.90


# ------------------------------------------------------------------------------ gated Grad-CAM++
def gate_filter_weights(weights: np.ndarray, gate: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Multiply each image's per-filter weights by its target class's gate row.

    Args:
        weights: (N, K) per-filter weights (Grad-CAM++'s ``w_k^c``).
        gate: (C, K) gate ``G``.
        classes: (N,) target class of each image.

    Returns:
        (N, K) ``weights[i, k] · G[classes[i], k]``.
    """
    return weights * gate[np.asarray(classes, dtype=np.int64)]


def gate_matrix(net: CSGNet, gate: Tensor | np.ndarray | None = None) -> np.ndarray:
    """The (C, K) gate as float32 numpy: ``gate`` if given, else the network's learned gate.

    Args:
        net: the network whose gated layer is explained.
        gate: an explicit (C, K) gate, or ``None`` for ``net.gate.weight``.

    Returns:
        The gate matrix.

    Raises:
        ValueError: no gate at all, or a gate of the wrong shape.
    """
    if gate is None:
        if net.gate is None:
            raise ValueError("gated Grad-CAM++ needs a CSG model (a gate) or an explicit gate")
        gate = net.gate.weight
    matrix = torch.as_tensor(gate).detach().float().cpu().numpy()
    if matrix.shape != (net.num_classes, net.num_filters):
        raise ValueError(
            f"gate shape {matrix.shape} does not match the model's (num_classes, num_filters) = "
            f"({net.num_classes}, {net.num_filters})"
        )
    return matrix


def gated_gradcam_plus_plus_class(gate: np.ndarray) -> type:
    """A pytorch-grad-cam ``GradCAMPlusPlus`` subclass whose per-filter weights are gated.

    Args:
        gate: (C, K) gate from :func:`gate_matrix`.

    Returns:
        The class, for ``localization_maps(..., "gradcam++", cam_class=...)`` (which builds it
        on the network's gated layer and releases its hooks).
    """
    from pytorch_grad_cam import GradCAMPlusPlus

    class GatedGradCAMPlusPlus(GradCAMPlusPlus):
        """Grad-CAM++ with ``w_k^c`` replaced by ``G[c, k]·w_k^c``."""

        def get_cam_weights(
            self, input_tensor: Any, target_layers: Any, targets: list[Any], activations: Any,
            grads: Any,
        ) -> np.ndarray:  # fmt: skip
            weights = super().get_cam_weights(
                input_tensor, target_layers, targets, activations, grads
            )
            classes = np.array([int(target.category) for target in targets])
            return gate_filter_weights(weights, gate, classes)

    return GatedGradCAMPlusPlus


def gated_gradcam_plus_plus_maps(
    net: CSGNet,
    images: Tensor,
    targets: Tensor,
    gate: Tensor | np.ndarray | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Gated Grad-CAM++ maps of ``targets`` at the images' resolution, (N, H, W).

    ``localization_maps(..., "gradcam++")`` (pytorch-grad-cam's maps, resized and min-max
    scaled per image) with the per-filter weights gated.

    Args:
        net: a CSGNet; runs in eval mode, its mode and device are restored afterwards.
        images: float (N, C, H, W) in [0, 1].
        targets: long (N,) classes to explain (the ground truth for GT-known Loc).
        gate: (C, K) gate (default: the network's learned gate).
        batch_size: images per forward/backward pass.
        device: where to run.

    Returns:
        Float (N, H, W) on the CPU.
    """
    from csg_interp.attribution.localization import localization_maps

    cam_class = gated_gradcam_plus_plus_class(gate_matrix(net, gate))
    return localization_maps(net, images, targets, "gradcam++", batch_size, device, cam_class)


# ------------------------------------------------------------------------------------- scoring
def score_model(
    net: CSGNet, val: ArrayDataset, test: ArrayDataset, sweep_step: float,
    device: str | torch.device = "cpu", batch_size: int = 256,
) -> tuple[dict[str, Any], dict[str, Tensor]]:  # fmt: skip
    """Every method on one model: the library's four (``localize_net``) plus, with a gate, ours.

    Args:
        net: the model (``csg`` maps and gated Grad-CAM++ only when it has a gate).
        val, test: scene splits with boxes and masks.
        sweep_step: the min-max threshold step.
        device, batch_size: where and how many images at a time.

    Returns:
        ``(summary, test maps)``: ``summary`` has ``top1_cls`` (scene classification accuracy on
        test), ``methods`` (method → metrics, ``threshold`` chosen on val) and ``filters`` (the
        per-filter protocol: ``filter_ap``, ``filter_iou``, ``rfn``).
    """
    from csg_interp.attribution.localization import LOCALIZATION_METHODS
    from csg_interp.workflows.localize import localize_net

    extra = {}
    if net.gate is not None:
        extra[GATED_METHOD] = lambda images, targets: gated_gradcam_plus_plus_maps(
            net, images, targets, None, batch_size, device
        )
    return localize_net(
        net, val, test, list(LOCALIZATION_METHODS), sweep_step, device, batch_size, extra
    )


def method_hits(
    model: str, summary: dict[str, Any], test_maps: dict[str, Tensor], boxes: Tensor
) -> dict[str, np.ndarray]:
    """Per-image GT-known hits (bool (N,)) of every method of a model at its val threshold.

    Args:
        model: ``csg`` or ``std`` (the key prefix).
        summary: :func:`score_model`'s summary (for the thresholds).
        test_maps: method → (N, H, W) test maps.
        boxes: (N, 4) true test boxes.

    Returns:
        ``{"model/method": hits}``.
    """
    from csg_interp.attribution.localization import gt_known_hits

    return {
        f"{model}/{method}": gt_known_hits(
            maps, boxes, summary["methods"][method]["threshold"]
        ).numpy()
        for method, maps in test_maps.items()
    }


def compare_sides(hits: dict[str, np.ndarray], resamples: int) -> dict[str, Any]:
    """Best CSG-side method minus best other method, GT-known Loc, with a paired bootstrap.

    Args:
        hits: ``model/method`` → per-image hit values (bool, or hit rates averaged over seeds),
            all over the same test images.
        resamples: bootstrap resamples of the images.

    Returns:
        ``csg_side`` and ``other`` (method, GT-known Loc), ``difference_points``,
        ``interval_points`` (95 % percentile interval), ``resamples``, ``target_points`` and
        ``target_met`` (difference ≥ target and interval above 0).
    """
    from csg_interp.metrics import paired_bootstrap_interval

    gt_known = {key: float(np.mean(values)) for key, values in hits.items()}
    ours = max((k for k in gt_known if k in CSG_SIDE), key=gt_known.__getitem__)
    other = max((k for k in gt_known if k not in CSG_SIDE), key=gt_known.__getitem__)
    difference = 100.0 * (gt_known[ours] - gt_known[other])
    low, high = (
        100.0 * end
        for end in paired_bootstrap_interval(
            np.asarray(hits[ours], dtype=float), np.asarray(hits[other], dtype=float), resamples
        )
    )
    return {
        "csg_side": {"method": ours, "gt_known_loc": gt_known[ours]},
        "other": {"method": other, "gt_known_loc": gt_known[other]},
        "difference_points": difference, "interval_points": [low, high],
        "resamples": resamples, "target_points": TARGET_POINTS,
        "target_met": bool(difference >= TARGET_POINTS and low > 0.0),
    }  # fmt: skip


def encode_hits(hits: np.ndarray) -> str:
    """Per-image hits as a string of ``0``/``1`` (compact in JSON)."""
    return "".join("1" if hit else "0" for hit in np.asarray(hits, dtype=bool))


def decode_hits(text: str) -> np.ndarray:
    """The inverse of :func:`encode_hits`: bool (N,)."""
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord("1")


# ------------------------------------------------------------------------------------ training
def train_config(
    protocol: str, variant: str, seed: int, run_dir: Path, device: str = "cpu",
    data_root: str | None = None,
) -> TrainConfig:  # fmt: skip
    """The resolved TrainConfig of one model: ResNet-8 on scenes, the ``scratch`` preset.

    Args:
        protocol: a key of :data:`PROTOCOLS`.
        variant: a key of :data:`VARIANTS`.
        seed: the training seed (the data seed stays 0: the same scenes for every run).
        run_dir: the run directory.
        device: where to train.
        data_root: Fashion-MNIST's idx folder (``None``: the loader's default).

    Returns:
        The resolved config.
    """
    spec = PROTOCOLS[protocol]
    return TrainConfig(
        dataset="scenes", model="resnet8", widths=list(spec["widths"]), epochs=spec["epochs"],
        batch_size=spec["batch_size"], train_subset=spec["train_scenes"],
        val_size=spec["val_scenes"], data_options={"test_size": spec["test_scenes"]}, seed=seed,
        device=device, data_root=data_root, out=str(run_dir), channels_last=spec["channels_last"],
        **VARIANTS[variant],
    ).resolved()  # fmt: skip


def train_or_resume(config: TrainConfig, bundle: DataBundle) -> tuple[Run, dict[str, Any]]:
    """Train one model, resuming its run directory when it holds a run.

    Args:
        config: the resolved config (``out`` is the run directory).
        bundle: the scenes (shared by every run of the protocol).

    Returns:
        ``(run, {"train_seconds", "resumed"})``.
    """
    run_dir = Path(config.out)
    resume = (run_dir / "last.pt").is_file() or (run_dir / "config.json").is_file()
    start = time.perf_counter()
    run = fit(config, bundle=bundle, resume=resume, progress=False)
    return run, {"train_seconds": round(time.perf_counter() - start, 1), "resumed": resume}


def run_model(
    protocol: str, variant: str, seed: int, bundle: DataBundle, runs_dir: Path,
    device: str = "cpu", data_root: str | None = None, model: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # fmt: skip
    """Train (or resume) one model and score every method on it.

    Args:
        protocol: a key of :data:`PROTOCOLS`.
        variant: a key of :data:`VARIANTS`.
        seed: the training seed.
        bundle: the scenes.
        runs_dir: where the run directories go (``<variant>_s<seed>``: the STD twin's is shared
            by both gated variants of a seed, which then only reload it).
        device: where to train and score.
        data_root: Fashion-MNIST's idx folder.
        model: the key of the model in the seed's JSON and its hits (one of :data:`MODELS`;
            default ``variant``).

    Returns:
        ``(model record, {"model/method": per-image hits})``; the record names its ``variant``.
    """
    spec = PROTOCOLS[protocol]
    name = f"{variant}_s{seed}"
    config = train_config(protocol, variant, seed, runs_dir / name, device, data_root)
    print(f"[train] localization/{protocol}/{name} at {time.strftime('%H:%M:%S')}", flush=True)
    run, training = train_or_resume(config, bundle)
    start = time.perf_counter()
    summary, test_maps = score_model(run.net, bundle.val, bundle.test, spec["sweep_step"], device)
    hits = method_hits(model or variant, summary, test_maps, bundle.test.extras["boxes"])
    record = {
        "variant": variant, "config": config.to_dict(), **training, "history": run.history,
        "test_accuracy": summary["top1_cls"],
        "gate_density": run.history[-1].get("gate_density") if run.history else None,
        "methods": summary["methods"], "filters": summary["filters"],
        "eval_seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    print(f"[model] {name}: test acc {record['test_accuracy']:.4f}, filter AP "
          f"{record['filters']['filter_ap']:.3f}, train {training['train_seconds']:.0f} s, "
          f"scoring {record['eval_seconds']:.0f} s", flush=True)  # fmt: skip
    return record, hits


def run_seed(
    protocol: str, seed: int, bundle: DataBundle, runs_dir: Path, device: str = "cpu",
    data_root: str | None = None, gated: str = "csg",
) -> dict[str, Any]:  # fmt: skip
    """Both models of one seed, every method, the comparison: the seed's JSON payload.

    Args:
        protocol: a key of :data:`PROTOCOLS`.
        seed: the training seed.
        bundle: the scenes.
        runs_dir: where the run directories go.
        device: where to train and score.
        data_root: Fashion-MNIST's idx folder.
        gated: the gated model's variant (one of :data:`GATED_VARIANTS`); the JSON keys it
            ``csg`` whichever it is, and records it as ``gated_variant``.

    Returns:
        The result dict that :func:`main` writes as ``s<seed>.json``.
    """
    if gated not in GATED_VARIANTS:
        raise ValueError(f"gated variant {gated!r} is not one of {GATED_VARIANTS}")
    start = time.perf_counter()
    models, hits = {}, {}
    for model, variant in zip(MODELS, (gated, "std")):
        models[model], model_hits = run_model(protocol, variant, seed, bundle, runs_dir, device,
                                              data_root, model)  # fmt: skip
        hits.update(model_hits)
    accuracies = [model["test_accuracy"] for model in models.values()]
    return {
        "protocol": protocol, "seed": seed, "gated_variant": gated, "git": git_revision(),
        "data": {
            "dataset": "scenes", "train_scenes": len(bundle.train),
            "val_scenes": len(bundle.val), "test_scenes": len(bundle.test), "info": bundle.info,
        },
        "sweep_step": PROTOCOLS[protocol]["sweep_step"],
        "thresholds_chosen": {
            f"{name}/{method}": metrics["threshold"]
            for name, model in models.items() for method, metrics in model["methods"].items()
        },
        "models": models,
        "accuracy_target": ACCURACY_TARGET,
        "accuracy_target_met": bool(min(accuracies) >= ACCURACY_TARGET),
        "comparison": compare_sides(hits, PROTOCOLS[protocol]["resamples"]),
        "filter_ap": {name: model["filters"]["filter_ap"] for name, model in models.items()},
        "hits": {key: encode_hits(values) for key, values in hits.items()},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "device": device, "load_average_at_end": list(os.getloadavg()),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


def pool_seeds(results: list[dict[str, Any]], resamples: int) -> dict[str, Any]:
    """The comparison pooled over seeds (same test scenes): per-image hits averaged over seeds.

    Args:
        results: the seeds' JSON payloads (same protocol).
        resamples: bootstrap resamples of the images.

    Returns:
        ``seeds``, per-method GT-known Loc per seed and mean, accuracies, filter AP, and the
        pooled ``comparison`` (as :func:`compare_sides`).

    Raises:
        ValueError: the seeds scored different numbers of test scenes.
    """
    keys = sorted(set.intersection(*(set(result["hits"]) for result in results)))
    per_seed = {key: [decode_hits(result["hits"][key]) for result in results] for key in keys}
    if len({hits.size for values in per_seed.values() for hits in values}) != 1:
        raise ValueError("the seeds scored different test scenes; pool only one protocol")
    variants = {result.get("gated_variant", "csg") for result in results}
    if len(variants) != 1:
        raise ValueError("the seeds trained different gated variants; pool one --gated at a time")
    mean_hits = {key: np.mean(values, axis=0) for key, values in per_seed.items()}
    return {
        "protocol": results[0]["protocol"], "gated_variant": variants.pop(),
        "seeds": [result["seed"] for result in results],
        "git": git_revision(), "test_scenes": int(next(iter(mean_hits.values())).size),
        "gt_known_loc_per_seed": {k: [float(v.mean()) for v in per_seed[k]] for k in keys},
        "gt_known_loc_mean": {key: float(values.mean()) for key, values in mean_hits.items()},
        "test_accuracy": {
            name: [result["models"][name]["test_accuracy"] for result in results]
            for name in MODELS
        },
        "filter_ap": {name: [result["filter_ap"][name] for result in results] for name in MODELS},
        "comparison": compare_sides(mean_hits, resamples),
    }  # fmt: skip


def against_paper(
    results: list[dict[str, Any]], paper_results: list[dict[str, Any]], resamples: int
) -> dict[str, Any]:
    """A gated variant's network against the paper's gated network, method by method.

    Both gated models of a seed were trained on the same scenes with the same seed and scored on
    the same test scenes, so their per-image hits pair up: for every ``csg/<method>`` key of
    both, the hits are averaged over the seeds both have (as :func:`pool_seeds` does) and the
    variant minus the paper's is resampled over the images.

    Args:
        results: the variant's seed JSON payloads (``gated_variant`` not ``csg``).
        paper_results: the paper's seed JSON payloads (``gated_variant`` ``csg``) of the same
            protocol; seeds the variant lacks are ignored.
        resamples: bootstrap resamples of the images.

    Returns:
        ``seeds`` (the common ones), ``test_accuracy`` (``variant`` and ``paper``: per seed) and
        ``methods``: ``csg/<method>`` → ``variant`` and ``paper`` GT-known Loc (mean over the
        seeds), ``difference_points`` and ``interval_points`` (95 % paired bootstrap).

    Raises:
        ValueError: the variants are not one non-paper variant against the paper's, no seed is
            common, or the two scored different test scenes.
    """
    from csg_interp.metrics import paired_bootstrap_interval

    variants = {result.get("gated_variant", "csg") for result in results}
    paper_variants = {result.get("gated_variant", "csg") for result in paper_results}
    if len(variants) != 1 or "csg" in variants or paper_variants != {"csg"}:
        raise ValueError(f"compare one variant other than csg ({sorted(variants)}) with the "
                         f"paper's csg ({sorted(paper_variants)})")  # fmt: skip
    paper_by_seed = {result["seed"]: result for result in paper_results}
    pairs = [(result, paper_by_seed[result["seed"]]) for result in results
             if result["seed"] in paper_by_seed]  # fmt: skip
    if not pairs:
        raise ValueError("no seed has results of both gated variants")
    common = set.intersection(*(set(r["hits"]) & set(p["hits"]) for r, p in pairs))
    keys = [key for key in pairs[0][0]["hits"] if key in common and key.startswith("csg/")]
    methods = {}
    for key in keys:
        ours = np.mean([decode_hits(r["hits"][key]) for r, _ in pairs], axis=0)
        theirs = np.mean([decode_hits(p["hits"][key]) for _, p in pairs], axis=0)
        if ours.shape != theirs.shape:
            raise ValueError("the two variants scored different test scenes")
        low, high = paired_bootstrap_interval(ours, theirs, resamples)
        methods[key] = {
            "variant": float(ours.mean()), "paper": float(theirs.mean()),
            "difference_points": 100.0 * float(ours.mean() - theirs.mean()),
            "interval_points": [100.0 * low, 100.0 * high],
        }  # fmt: skip
    return {
        "variant": variants.pop(), "seeds": [r["seed"] for r, _ in pairs],
        "resamples": resamples,
        "test_accuracy": {
            "variant": [r["models"]["csg"]["test_accuracy"] for r, _ in pairs],
            "paper": [p["models"]["csg"]["test_accuracy"] for _, p in pairs],
        },
        "methods": methods,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------- main
def load_scenes_bundle(protocol: str, runs_dir: Path, data_root: str | None) -> DataBundle:
    """The protocol's scenes, loaded once (every run's config names the same data)."""
    return load_bundle(train_config(protocol, "csg", 0, runs_dir, "cpu", data_root))


def selected_seeds(protocol: str, only: str | None) -> list[int]:
    """The protocol's seeds, restricted to ``--only`` (``s0,s2`` or ``0,2``)."""
    seeds = PROTOCOLS[protocol]["seeds"]
    if not only:
        return list(seeds)
    wanted = {int(name.strip().lstrip("s")) for name in only.split(",") if name.strip()}
    return [seed for seed in seeds if seed in wanted]


def print_done(name: str, result: dict[str, Any]) -> None:
    """The progress line of a finished seed (or of the pooled comparison)."""
    c = result["comparison"]
    low, high = c["interval_points"]
    print(
        f"[done] {name}: {c['csg_side']['method']} {100 * c['csg_side']['gt_known_loc']:.1f} vs "
        f"{c['other']['method']} {100 * c['other']['gt_known_loc']:.1f}: "
        f"{c['difference_points']:+.1f} points ({low:+.1f} … {high:+.1f}), target "
        f"{'met' if c['target_met'] else 'not met'}", flush=True,
    )  # fmt: skip


def run_pending_seeds(args: argparse.Namespace, out_dir: Path, runs_dir: Path) -> int:
    """Run every selected seed without a JSON (one at a time); returns the number that failed.

    The ``full`` protocol holds the compute lock during each seed (not between seeds, so that
    queued light jobs can run) unless ``--no-lock``.
    """
    from csg_interp._utils import write_json_atomic

    protocol, bundle, failures = args.protocol, None, 0
    for seed in selected_seeds(protocol, args.only):
        target = out_dir / f"s{seed}.json"
        if target.exists():
            print(f"[skip] localization/{protocol}/s{seed}: {target} exists", flush=True)
            continue
        use_lock = protocol == "full" and not args.no_lock
        with compute_lock() if use_lock else contextlib.nullcontext():
            print(f"[run ] localization/{protocol}/s{seed} at {time.strftime('%H:%M:%S')}",
                  flush=True)  # fmt: skip
            try:
                if bundle is None:
                    bundle = load_scenes_bundle(protocol, runs_dir, args.data_root)
                result = run_seed(protocol, seed, bundle, runs_dir, args.device, args.data_root,
                                  args.gated)  # fmt: skip
            except Exception:  # keep going with the other seeds; the log has the traceback
                traceback.print_exc()
                failures += 1
                continue
        write_json_atomic(target, result, indent=1)
        print_done(f"s{seed} in {result['wall_seconds']:.0f} s", result)
    return failures


def finished_seeds(protocol: str, folder: Path) -> list[dict[str, Any]]:
    """The seed JSON payloads of ``folder`` (the protocol's seeds that have one), in seed order."""
    paths = [folder / f"s{seed}.json" for seed in PROTOCOLS[protocol]["seeds"]]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def write_pooled(protocol: str, out_dir: Path, paper_dir: Path | None = None) -> Path | None:
    """Pool the protocol's finished seeds into ``pooled.json``; ``None`` when none is finished.

    For a gated variant other than the paper's, ``paper_dir`` (the paper's results of the same
    protocol) adds ``against_paper`` (:func:`against_paper`) when it holds a common seed.
    """
    from csg_interp._utils import write_json_atomic

    finished = finished_seeds(protocol, out_dir)
    if not finished:
        return None
    pooled = pool_seeds(finished, PROTOCOLS[protocol]["resamples"])
    paper = finished_seeds(protocol, paper_dir) if paper_dir is not None else []
    common = {r["seed"] for r in paper} & set(pooled["seeds"])
    if pooled["gated_variant"] != "csg" and common:
        pooled["against_paper"] = against_paper(finished, paper, PROTOCOLS[protocol]["resamples"])
    target = write_json_atomic(out_dir / "pooled.json", pooled, indent=1)
    print_done(f"pooled over seeds {','.join(map(str, pooled['seeds']))}", pooled)
    return target


def main(argv: list[str] | None = None) -> int:
    """Run the seeds of a protocol (skipping finished ones), then pool the finished seeds.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 when a seed failed (the others still ran; the traceback is printed).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="full")
    parser.add_argument("--only", default=None, help="comma-separated seeds (s0,s2 or 0,2)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST's idx folder")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (default 2: the project machine's cores)")
    parser.add_argument("--gated", choices=GATED_VARIANTS, default="csg",
                        help="the gated model: csg (the paper's alternation, default) or own01 "
                        "(joint objective + owner separation 0.1); the STD twin is shared")
    parser.add_argument("--results", default=None, help="folder of the JSON files (default "
                        "experiments/results/localization/PROTOCOL, or PROTOCOL_own01 with "
                        "--gated own01)")  # fmt: skip
    parser.add_argument("--paper-results", default=None,
                        help="with --gated own01: the paper's results to compare the gated "
                        "networks with (default experiments/results/localization/PROTOCOL)")
    parser.add_argument("--runs", default=None,
                        help="run directories (default experiments/runs/localization/PROTOCOL)")
    parser.add_argument("--no-lock", action="store_true",
                        help="do not hold the compute lock (held per seed for the full protocol)")
    args = parser.parse_args(argv)
    if args.paper_results and args.gated == "csg":
        parser.error("--paper-results compares a --gated variant other than csg; add --gated own01")

    torch.set_num_threads(args.threads)
    suffix = "" if args.gated == "csg" else f"_{args.gated}"
    results_root = HERE / "results" / "localization"
    out_dir = Path(args.results) if args.results else results_root / f"{args.protocol}{suffix}"
    paper_dir = None
    if args.gated != "csg":
        paper_dir = Path(args.paper_results) if args.paper_results else results_root / args.protocol
    runs_dir = Path(args.runs) if args.runs else HERE / "runs" / "localization" / args.protocol
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = run_pending_seeds(args, out_dir, runs_dir)
    write_pooled(args.protocol, out_dir, paper_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
