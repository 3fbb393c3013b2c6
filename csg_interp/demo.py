"""The end-to-end demo behind ``make demo`` / ``csg-interp demo``.

Contract: after set-up it runs in at most 8 minutes on 2 CPU cores. Each stage is a
function ``stage(ctx: DemoContext) -> None`` registered in ``STAGES`` in pipeline order; a stage
reads what earlier stages put on the context and prints the paths it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DemoContext", "STAGES", "run_demo"]


@dataclass
class DemoContext:
    out: Path
    dataset: str
    data_root: str | None
    device: str
    seed: int
    quick: bool
    # Filled by the stages:
    runs: dict[str, Path] = field(default_factory=dict)  # "csg" / "std" -> run directory
    artifacts: dict[str, Any] = field(default_factory=dict)


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def stage_evaluate(ctx: DemoContext) -> None:
    """Entanglement metrics: accuracy, MIS, its ceiling and L1-density of the CSG run
    against the STD run, MI on 2k test images (500 with ``--quick``). Writes each run's
    ``metrics.json`` and prints the STD-vs-CSG table."""
    from csg_interp.workflows.evaluate import format_evaluation
    from csg_interp.metrics.runs import evaluate_run

    if "csg" not in ctx.runs:
        print("[evaluate] skipped: no CSG run on the context (run the train stage first)")
        return
    result = evaluate_run(
        ctx.runs["csg"], "test", baseline=ctx.runs.get("std"),
        max_samples=500 if ctx.quick else 2000, device=ctx.device, data_root=ctx.data_root,
        progress=False,
    )  # fmt: skip
    ctx.artifacts["evaluate"] = result
    print(format_evaluation(result))
    written = [Path(ctx.runs[name]) / "metrics.json" for name in ("csg", "std") if name in ctx.runs]
    print(f"[evaluate] wrote {', '.join(map(str, written))}")


#: Training budget of the demo pair with the default one-cycle recipe: 8 epochs on 15k
#: Fashion-MNIST images (944 steps per run, ≈ 3 min per model on 2 idle threads of the project's
#: machine; the measured pair is in docs/training.md), the digits fallback, and ``quick``, the
#: smoke-test budget (seconds).
TRAIN_BUDGET: dict[tuple[str, bool], dict[str, Any]] = {
    ("fashion-mnist", False): dict(model="resnet8", epochs=8, train_subset=15000, val_size=2000),
    ("fashion-mnist", True): dict(model="resnet8", epochs=3, train_subset=1024, val_size=200),
    ("digits", False): dict(model="resnet8", epochs=12, batch_size=64),
    ("digits", True): dict(model="smallcnn", epochs=3, batch_size=64),
}


def _demo_dataset(ctx: DemoContext) -> str:
    """``auto``: Fashion-MNIST when its files are found, else digits, said loudly."""
    from csg_interp.data import MissingDatasetError, find_fashion_mnist

    if ctx.dataset != "auto":
        return ctx.dataset
    try:
        find_fashion_mnist(ctx.data_root)
        return "fashion-mnist"
    except MissingDatasetError as error:
        print("!" * 78)
        print("!! Fashion-MNIST NOT FOUND: the demo falls back to scikit-learn's 8x8 DIGITS.")
        print(f"!! {error}")
        print("!" * 78, flush=True)
        return "digits"


def stage_train(ctx: DemoContext) -> None:
    """Train the STD/CSG pair: same seed, data and budget, ``scratch`` preset; the
    STD twin first. Writes ``<out>/runs/std`` and ``<out>/runs/csg``; a finished pair in the same
    place is reused (``resume``), a different one is an error."""
    from csg_interp.training import TrainConfig, fit

    dataset = _demo_dataset(ctx)
    ctx.dataset = dataset
    budget = TRAIN_BUDGET[(dataset, ctx.quick)]
    print(f"[train] {dataset}: {budget}, seed {ctx.seed}, device {ctx.device}", flush=True)
    for name, gate in (("std", False), ("csg", True)):
        config = TrainConfig(
            dataset=dataset, data_root=ctx.data_root, device=ctx.device, seed=ctx.seed, gate=gate,
            out=str(ctx.out / "runs" / name), **budget,
        )  # fmt: skip
        run = fit(config, resume=True, progress=not ctx.quick)
        ctx.runs[name] = run.run_dir
        result = run.manifest["result"]
        density = f", gate L1-density {result['gate_density']:.3f}" if gate else ""
        print(f"[train] {name.upper()}: test accuracy {result['test_acc']:.4f}{density} "
              f"→ {run.run_dir}", flush=True)  # fmt: skip


def stage_localize(ctx: DemoContext) -> None:
    """Weakly supervised localization: the demo pair, trained on plain 28×28 items,
    applied to 64×64 scenes built from val/test items among digit clutter (the networks are
    fully convolutional + GAP). CSG maps vs CAM and Captum Grad-CAM on both models: GT-known
    Loc at a val-chosen threshold, MaxBoxAcc, mask IoU. Writes ``<csg run>/localize/``."""
    from csg_interp.workflows.localize import localize_runs

    if "csg" not in ctx.runs:
        print("[localize] skipped: no CSG run on the context (run the train stage first)")
        return
    result = localize_runs(
        str(ctx.runs["csg"]), baseline=str(ctx.runs["std"]) if "std" in ctx.runs else None,
        methods=["csg", "cam", "gradcam"], val_size=64 if ctx.quick else 150,
        test_size=64 if ctx.quick else 250, sweep_step=0.05, overlays=8, device=ctx.device,
    )  # fmt: skip
    ctx.artifacts["localize"] = result
    for name, model in result["models"].items():
        for method, metrics in model["methods"].items():
            print(f"[localize] {name.upper()} {method:<8} GT-known Loc {metrics['gt_known_loc']:.3f}"
                  f"  MaxBoxAcc v2 {metrics['max_box_acc_v2']:.3f}  mask IoU {metrics['mask_iou']:.3f}")  # fmt: skip
    print(f"[localize] wrote {result['paths']['metrics']} and {len(result['paths']['overlays'])} overlays")


def stage_detect(ctx: DemoContext) -> None:
    """Adversarial detection: PGD at ε = 0.03 and 0.1 on 1k test images (200 with
    ``--quick``); gate consistency of the CSG model vs the MI gate of the STD model, max-softmax
    and Mahalanobis; fitted on validation images. Writes ``<csg run>/detect/``."""
    from csg_interp.applications.pipeline import detect_run
    from csg_interp.workflows.detect import format_rows as format_summary

    if "csg" not in ctx.runs:
        print("[detect] skipped: no CSG run on the context (run the train stage first)")
        return
    result = detect_run(
        ctx.runs["csg"], ctx.runs.get("std"), method="pgd", eps=(0.03, 0.1),
        num_images=200 if ctx.quick else 1000, fit_images=500 if ctx.quick else 2000,
        device=ctx.device, seed=ctx.seed, data_root=ctx.data_root,
    )
    ctx.artifacts["detect"] = result
    print(format_summary(result))
    out = Path(ctx.runs["csg"]) / "detect"
    print(f"[detect] wrote {out / 'metrics.json'} and {', '.join(result['figures'])} in {out}")


def stage_report(ctx: DemoContext) -> None:
    """The report: one self-contained ``report.html`` for the CSG run with the STD run
    as baseline -- whatever the earlier stages wrote. Prints its path."""
    from csg_interp.report import write_report

    runs = dict(ctx.runs)
    for name in ("csg", "std"):  # `--stages report` on an earlier demo's output folder
        if name not in runs and (ctx.out / "runs" / name / "config.json").is_file():
            runs[name] = ctx.out / "runs" / name
    if "csg" not in runs:
        print("[report] skipped: no CSG run (run the train stage first)")
        return
    result = write_report(runs["csg"], baseline=runs.get("std"))
    ctx.artifacts["report"] = result.path
    print(f"[report] {len(result.figures)} figures, sections: {', '.join(result.sections)}")
    print(f"[report] open {result.path.resolve()}", flush=True)


def stage_explain(ctx: DemoContext) -> None:
    """Attributions: per run, the class map and the filters that fired for the predicted
    class of 8 test images (4 with ``--quick``) -- the CSG run through its learned gate, the STD
    run through ``gate_from_mi`` on validation images -- plus the cascading-randomisation sanity
    check (CSGAttribution vs Captum LayerGradCam) on the same images. Writes ``<run>/explain/``."""
    import json

    from csg_interp.attribution.explain import explain_run

    if "csg" not in ctx.runs:
        print("[explain] skipped: no CSG run on the context (run the train stage first)")
        return
    count = 4 if ctx.quick else 8
    for name in ("csg", "std"):
        if name not in ctx.runs:
            continue
        index_path = explain_run(
            ctx.runs[name], num_images=count, fit_images=500 if ctx.quick else 2000,
            device=ctx.device, data_root=ctx.data_root, sanity_images=count,
        )  # fmt: skip
        index = json.loads(index_path.read_text())
        ctx.artifacts[f"explain_{name}"] = index_path
        sanity = index["info"]["sanity"]
        finals = ", ".join(f"{m} {v:.2f}" for m, v in sanity["final_spearman"].items())
        fired = [len(entry["filters"]) for entry in index["images"]]
        print(f"[explain] {name.upper()} ({index['info']['gate']}): {len(fired)} images, "
              f"{sum(fired) / max(len(fired), 1):.1f} fired filters per image; sanity check, "
              f"Spearman ρ after full randomisation: {finals}", flush=True)  # fmt: skip
        print(f"[explain] wrote {index_path} (+ npz/png per image, sanity.md)")


# Pipeline order: train → evaluate → explain → localize → detect → report.
STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("train", stage_train),
    ("evaluate", stage_evaluate),
    ("explain", stage_explain),
    ("localize", stage_localize),
    ("detect", stage_detect),
    ("report", stage_report),
]


def run_demo(
    out: str = "runs/demo",
    dataset: str = "auto",
    data_root: str | None = None,
    device: str = "auto",
    seed: int = 0,
    quick: bool = False,
    stages: list[str] | None = None,
) -> DemoContext:
    """Run the demo stages in order (or only ``stages``); returns the filled context."""
    ctx = DemoContext(Path(out), dataset, data_root, device, seed, quick)
    ctx.out.mkdir(parents=True, exist_ok=True)
    known = [name for name, _ in STAGES]
    for name in stages or []:
        if name not in known:
            raise ValueError(f"unknown demo stage {name!r}; stages: {', '.join(known)}")
    start = time.perf_counter()
    for name, stage in STAGES:
        if stages and name not in stages:
            continue
        _banner(f"demo stage: {name}")
        stage_start = time.perf_counter()
        stage(ctx)
        print(f"[{name}] done in {time.perf_counter() - stage_start:.1f} s", flush=True)
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; everything is under {ctx.out}/")
    return ctx
