"""Attribution cost and faithfulness: CSGAttribution vs Grad-CAM.

Cost: images/s of one attribution call for a batch, against a no-grad forward of the same batch,
Captum ``LayerGradCam`` and pytorch-grad-cam ``GradCAM``. Every call starts from pixels (a full
forward, no cached activations) with the same target classes (the model's predictions) and
returns maps at the input resolution (Captum-style methods are upsampled bilinearly inside the
timed call; pytorch-grad-cam does it itself). Interleaved rounds, median.
Time is CPU time of the (single-threaded) process, ``time.process_time``: on the shared,
oversubscribed 2-core machine wall time mostly measures the neighbours.
Peak memory: each method runs once in a fresh subprocess; the growth is the kernel's peak RSS
(``VmHWM``, reset just before the call through ``/proc/self/clear_refs``) minus the RSS before the
call, so imports, model and inputs are not counted (Linux only). GPU memory is not measured here.

Faithfulness: deletion and insertion AUC (Petsiuk et al., 2018) of CSG maps and Grad-CAM maps on
a trained CSG model and its STD twin, with :func:`csg_interp.attribution.deletion_insertion`
(zeros baseline, 20 steps, softmax of the predicted class, ReLU'd maps resized bilinearly),
cross-checked against torch-cam's ``DeletionInsertionMetric`` on the same models.

Run: ``python benchmarks/bench_attribution.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import interleaved_medians, markdown_table  # noqa: E402

TITLE = "Attribution cost and faithfulness: CSGAttribution vs Grad-CAM"
THREADS = 1
METHODS = ("no-grad forward", "CSGAttribution", "Captum LayerGradCam", "pytorch-grad-cam GradCAM")
# name → (backbone, input size, channels, classes, batch, quick batch)
CASES = {
    "demo": ("resnet8", 28, 1, 10, 64, 64),
    "resnet18": ("resnet18", 224, 3, 1000, 8, 4),
}


# ---------------------------------------------------------------------------- cost
def _build(case: str, batch: int):
    from csg_interp.models import build_backbone
    from csg_interp.training import CSGNet

    backbone, size, channels, classes, _, _ = CASES[case]
    torch.manual_seed(0)
    net = CSGNet.from_backbone(build_backbone(backbone, classes, channels), num_classes=classes)
    net.eval()
    with torch.no_grad():
        net.gate.weight.uniform_(0.0, 1.0)
    x = torch.rand(batch, channels, size, size)
    with torch.no_grad():
        targets = net(x).argmax(1).tolist()
    return net, x, targets


def _callable(method: str, net, x, targets):
    """One timed call of ``method``: from pixels to maps at the input resolution."""
    from captum.attr import LayerAttribution

    size = tuple(x.shape[2:])
    if method == "no-grad forward":
        def call():
            with torch.no_grad():
                return net(x)
    elif method == "CSGAttribution":
        from csg_interp.attribution import CSGAttribution

        csg = CSGAttribution.from_net(net)

        def call():
            return LayerAttribution.interpolate(csg.attribute(x, target=targets), size, "bilinear")
    elif method == "Captum LayerGradCam":
        from captum.attr import LayerGradCam

        grad_cam = LayerGradCam(net, net.gated_layer)

        def call():
            maps = grad_cam.attribute(x, target=targets, relu_attributions=True)
            return LayerAttribution.interpolate(maps.detach(), size, "bilinear")
    elif method == "pytorch-grad-cam GradCAM":
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pgc = GradCAM(model=net, target_layers=[net.gated_layer])
        pgc_targets = [ClassifierOutputTarget(int(t)) for t in targets]

        def call():
            return pgc(input_tensor=x, targets=pgc_targets)
    else:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    return call


def _speed(case: str, quick: bool) -> dict[str, float]:
    batch = CASES[case][5 if quick else 4]
    net, x, targets = _build(case, batch)
    calls = {method: _callable(method, net, x, targets) for method in METHODS}
    heavy = case == "resnet18"
    rounds = 3 if heavy else (5 if quick else 9)
    repeats = 1 if heavy else 3
    return interleaved_medians(calls, rounds=rounds, repeats=repeats, warmup=1,
                               clock=time.process_time)  # fmt: skip


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _memory_child(case: str, method: str, batch: int) -> None:
    """Run in a fresh process: one call; print the peak RSS growth in MiB as JSON.

    The kernel's peak-RSS mark (VmHWM) is reset just before the call (``5`` into
    ``/proc/self/clear_refs``), so set-up (imports, model, the forward that picks the targets)
    does not count.
    """
    torch.set_num_threads(THREADS)
    net, x, targets = _build(case, batch)
    call = _callable(method, net, x, targets)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_mib("VmRSS")
    call()
    print(json.dumps({"growth_mib": max(_status_mib("VmHWM") - before, 0.0)}))


def _memory(case: str, method: str, batch: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory", case, method, str(batch)],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"]


def _cost_section(quick: bool) -> tuple[list[str], dict]:
    rows, raw = [], {}
    for case in CASES:
        backbone, size, channels, classes, batch, quick_batch = CASES[case]
        batch = quick_batch if quick else batch
        times = _speed(case, quick)
        memory = {m: _memory(case, m, batch) for m in METHODS}
        raw[case] = {"times": times, "memory": memory, "batch": batch}
        base_t, base_m = times["no-grad forward"], memory["no-grad forward"]
        for method in METHODS:
            rows.append([
                f"{backbone} @ {size} px, batch {batch}", method,
                f"{batch / times[method]:.1f}", f"{times[method] / base_t:.2f}",
                f"{memory[method]:.0f}",
                f"{memory[method] / max(memory['Captum LayerGradCam'], 1e-9):.2f}",
            ])  # fmt: skip
    return rows, raw


# ---------------------------------------------------------------------------- faithfulness
def _trained_pair(quick: bool):
    """The demo's runs if `make demo` wrote them, else a small digits pair trained here."""
    from csg_interp.training import TrainConfig, fit, load_bundle, load_run

    demo = ROOT / "runs" / "demo" / "runs"  # where `make demo` trains its pair
    found = {n: demo / n for n in ("csg", "std") if (demo / n / "last.pt").is_file()}
    if len(found) == 2:
        runs = {n: load_run(p) for n, p in found.items()}
        return runs, f"the demo runs in `{demo.relative_to(ROOT)}`"
    out = Path(tempfile.mkdtemp(prefix="bench_attribution_"))
    options = dict(dataset="digits", model="smallcnn", epochs=3 if quick else 15, batch_size=32,
                   gate_lr=0.1, seed=0)  # fmt: skip
    bundle = load_bundle(TrainConfig(**options))
    runs = {}
    for name, gate in (("csg", True), ("std", False)):
        config = TrainConfig(**options, gate=gate, out=str(out / name))
        runs[name] = load_run(fit(config, bundle=bundle, progress=False).run_dir)
    return runs, (f"a SmallCNN CSG/STD pair trained here on scikit-learn digits (8×8 px, "
                  f"{options['epochs']} epochs; `make demo` first to use the demo's models)")


def _faithfulness_section(quick: bool) -> list[str]:
    from functools import partial

    import numpy as np
    from captum.attr import LayerGradCam
    from torchcam.methods import CAM, GradCAM
    from torchcam.metrics import DeletionInsertionMetric

    from csg_interp.attribution import CSGAttribution, deletion_insertion, sanity_check
    from csg_interp.metrics import extract_features, gate_from_mi, mutual_information_matrix

    runs, source = _trained_pair(quick)
    bundle = runs["csg"].load_data()
    count = 32 if quick else 64
    x, _ = bundle.test.tensors(torch.arange(min(count, len(bundle.test))))
    fit = min(500 if quick else 2000, len(bundle.val))
    rows, checks, sanity_tables = [], [], []
    for name in ("csg", "std"):
        net = runs[name].net.eval()
        if net.gate is not None:
            gate, gate_name = net.gate.weight.detach(), "learned gate"
        else:
            val = bundle.val.subset(np.arange(fit))
            features, labels = extract_features(net, val, progress=False)
            gate = gate_from_mi(mutual_information_matrix(features, labels, net.num_classes))
            gate_name = f"gate_from_mi ({fit} val images)"
        with torch.no_grad():
            predicted = net(x).argmax(1)
        csg_maps = CSGAttribution.from_net(net, gate=gate).attribute(
            x, target=predicted, relu_attributions=True)
        gc_maps = LayerGradCam(net, net.gated_layer).attribute(
            x, target=predicted, relu_attributions=True).detach()
        generator = torch.Generator().manual_seed(0)
        random_maps = torch.rand(csg_maps.shape, generator=generator)
        results = {}
        for label, maps in (
            (f"CSGAttribution cam ({gate_name})", csg_maps),
            ("Captum LayerGradCam", gc_maps),
            ("random map (reference)", random_maps),
        ):
            summary = deletion_insertion(net, x, maps, predicted, steps=20).summary()
            results[label] = summary
            rows.append([name.upper(), label, f"{summary['deletion_auc']:.3f}",
                         f"{summary['insertion_auc']:.3f}"])  # fmt: skip
        sanity = sanity_check(net, x[:16], gate=None if net.gate is not None else gate)
        sanity_tables += [f"{name.upper()} model ({gate_name}):", "", sanity.to_markdown(), ""]
        # Cross-check with torch-cam on the logit (its Grad-CAM differentiates the score it is
        # given, so only logit-vs-logit compares the same maps): its GradCAM, and its CAM with
        # the fc weights replaced by G⊙W (= our cam mode).
        shape = tuple(x.shape[1:])
        with GradCAM(net, target_layer=net.gated_layer, input_shape=shape) as extractor:
            metric = DeletionInsertionMetric(extractor, None, steps=20)
            metric.update(x)
            tc_gc = metric.summary()
        with CAM(net, target_layer=net.gated_layer, fc_layer=net.linear_head,
                 input_shape=shape) as extractor:  # fmt: skip
            gated_weight = gate * net.linear_head.weight.detach()
            extractor._fc_weights = gated_weight.to(extractor._fc_weights)
            metric = DeletionInsertionMetric(extractor, None, steps=20)
            metric.update(x)
            tc_cam = metric.summary()
        ours_gc = deletion_insertion(net, x, gc_maps, predicted, 20, score="logit").summary()
        ours_csg = deletion_insertion(net, x, csg_maps, predicted, 20, score="logit").summary()
        checks.append([
            name.upper(),
            f"{ours_csg['deletion_auc']:.4f} / {tc_cam['deletion_auc']:.4f}",
            f"{ours_csg['insertion_auc']:.4f} / {tc_cam['insertion_auc']:.4f}",
            f"{ours_gc['deletion_auc']:.4f} / {tc_gc['deletion_auc']:.4f}",
            f"{ours_gc['insertion_auc']:.4f} / {tc_gc['insertion_auc']:.4f}",
        ])  # fmt: skip
    return [
        f"Models: {source}; {x.shape[0]} test images ({tuple(x.shape[1:])}), each explained for "
        "its predicted class. Protocol: maps ReLU'd and resized bilinearly to the input, positions "
        "ranked (stable), 20 steps of ceil(P/20) positions, baseline = zeros (black) on all "
        "channels, score = softmax probability of the predicted class, trapezoid AUC over the "
        "perturbed fraction. Deletion: lower is better; insertion: higher is better.",
        "",
        markdown_table(["model", "map", "deletion AUC ↓", "insertion AUC ↑"], rows),
        "",
        "Cross-check, ours / torch-cam 0.5.0 `DeletionInsertionMetric`, same protocol but scoring "
        "the **logit** (torch-cam's Grad-CAM differentiates whatever score it is given, so only "
        "logit against logit compares the same maps); torch-cam's `CAM` with its fc weights "
        "replaced by G⊙W is our `cam` mode:",
        "",
        markdown_table(["model", "CSG deletion", "CSG insertion", "Grad-CAM deletion",
                        "Grad-CAM insertion"], checks),  # fmt: skip
        "",
        "Sanity check (Adebayo et al., 2018) on the first 16 of these images: mean ± std over the "
        "images of the Spearman rank correlation between the maps of the trained model and of a "
        "copy randomised cumulatively from the head (`csg_interp.attribution.sanity_check`, raw "
        "maps at layer resolution, same targets). Maps that keep a high correlation after the "
        "whole model is randomised do not explain the model.",
        "",
        *sanity_tables,
    ]


# ---------------------------------------------------------------------------- section
def run(quick: bool = False) -> str:
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    rows, raw = _cost_section(quick)
    lines = [
        f"Cost of one call on a batch, torch {torch.__version__} on CPU, {THREADS} thread "
        f"(`torch.set_num_threads({THREADS})`), random weights (cost does not depend on training). "
        "Each call starts from pixels, explains the same target classes (the predictions) and "
        "returns maps at the input resolution. Time: CPU seconds of the process "
        "(`time.process_time`), median of interleaved rounds (`benchmarks/_common.py`); images/s "
        "= batch / that time. Peak memory: growth of the kernel's peak-RSS mark (VmHWM, reset "
        "just before the call) over the RSS before it, one call in a fresh subprocess per method. "
        "**ResNet-18 runs batch "
        f"{CASES['resnet18'][5 if quick else 4]}, not 64**, so that the bench fits in ~3 min on "
        "the 2-core machine (memory growth scales with the batch; the ratios are what to read).",
        "",
        markdown_table(["model", "method", "images/s", "time / no-grad forward",
                        "peak memory growth (MiB)", "memory / LayerGradCam"], rows),  # fmt: skip
        "",
    ]
    verdicts = []
    for case, data in raw.items():
        t, m = data["times"], data["memory"]
        csg_time = t["CSGAttribution"]
        verdicts.append(
            f"- {case}: CSGAttribution time / forward = {csg_time / t['no-grad forward']:.3f} "
            f"(bar ≤ 1.10), / LayerGradCam = {csg_time / t['Captum LayerGradCam']:.3f} "
            f"(bar ≤ 1), speed-up over pytorch-grad-cam = "
            f"{t['pytorch-grad-cam GradCAM'] / t['CSGAttribution']:.2f}× (bar ≥ 2.5), memory / "
            f"LayerGradCam = {m['CSGAttribution'] / max(m['Captum LayerGradCam'], 1e-9):.2f} "
            "(bar ≤ 0.4)."
        )
    lines += ["Against the project's targets:", "", *verdicts, ""]
    lines += _faithfulness_section(quick)
    lines += ["", f"Wall time of this bench: {time.perf_counter() - start:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--memory":
        _memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(run(quick="--quick" in sys.argv))
