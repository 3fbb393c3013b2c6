"""The filter atlas pass and all-class maps: what they cost against a plain forward / Grad-CAM.

Atlas: :func:`csg_interp.attribution.filter_atlas` (top-k = 9 per filter, peaks, t_k regions)
over N Fashion-MNIST test images (random images of the same shape when the data set is not
installed) against a no-grad forward ``net(x)`` over the same images in the same batches (256,
the same DataLoader over uint8 images), at two N. Time: CPU seconds of the single-threaded
process (``time.process_time``; wall time on the shared 2-core machine mostly measures the
neighbours), median of interleaved rounds. Peak memory: growth of the kernel's peak-RSS mark
(VmHWM, reset just before the call through ``/proc/self/clear_refs``) over the RSS before it, one
call in a fresh subprocess per (method, N), so imports, model and data do not count (Linux only).
The model is the demo's ResNet-8 with random weights (the cost does not depend on training).

All-class maps: ``CSGAttribution.attribute_all_classes`` (every class's map, N×10×h×w, one
forward) against ten Captum ``LayerGradCam`` calls (one per class; a forward and a backward each)
and against ten single-target ``CSGAttribution.attribute`` calls, on a batch of 64, maps at the
layer's resolution.

Run: ``python benchmarks/bench_atlas.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import interleaved_medians, markdown_table  # noqa: E402

TITLE = "The filter atlas pass and all-class maps"
THREADS = 1
BATCH = 256
TOP_K = 9
SIZES = {False: (5000, 10000), True: (500, 1000)}  # full, quick


def _net(classes: int = 10):
    from csg_interp.models import build_backbone
    from csg_interp.training import CSGNet

    torch.manual_seed(0)
    net = CSGNet.from_backbone(build_backbone("resnet8", classes, 1), num_classes=classes).eval()
    with torch.no_grad():
        net.gate.weight.uniform_(0.0, 1.0)
    return net


def _images(count: int):
    """The first ``count`` Fashion-MNIST test images (uint8) as an ArrayDataset, and the source."""
    from csg_interp.data import ArrayDataset

    try:
        from csg_interp.data import load_dataset

        test = load_dataset("fashion-mnist").test
        if len(test) >= count:
            return test.subset(list(range(count))), "Fashion-MNIST test images"
    except (FileNotFoundError, ValueError):
        pass
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 10
    return ArrayDataset(images, labels, [str(c) for c in range(10)]), "random 28×28 images"


def _atlas_calls(net, data):
    from torch.utils.data import DataLoader

    from csg_interp.attribution import filter_atlas

    thresholds = torch.zeros(net.num_filters)

    def forward():
        with torch.no_grad():
            for images, _ in DataLoader(data, batch_size=BATCH, shuffle=False):
                net(images)

    def atlas():
        filter_atlas(net, data, thresholds, top_k=TOP_K, batch_size=BATCH)

    return {"no-grad forward": forward, "filter_atlas": atlas}


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _memory_child(method: str, count: int) -> None:
    """In a fresh process: one call; print the peak-RSS growth in MiB as JSON."""
    torch.set_num_threads(THREADS)
    net = _net()
    data, _ = _images(count)
    call = _atlas_calls(net, data)[method]
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_mib("VmRSS")
    call()
    print(json.dumps({"growth_mib": max(_status_mib("VmHWM") - before, 0.0)}))


def _memory(method: str, count: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory", method, str(count)],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"]


def _atlas_section(quick: bool) -> list[str]:
    net = _net()
    rows, verdicts, growth = [], [], {}
    source = ""
    for count in SIZES[quick]:
        data, source = _images(count)
        times = interleaved_medians(_atlas_calls(net, data), rounds=3, repeats=1, warmup=1,
                                    clock=time.process_time)  # fmt: skip
        memory = {method: _memory(method, count) for method in times}
        growth[count] = memory
        ratio = times["filter_atlas"] / times["no-grad forward"]
        for method, seconds in times.items():
            rows.append([count, method, f"{seconds:.2f}", f"{count / seconds:.0f}",
                         f"{seconds / times['no-grad forward']:.3f}",
                         f"{memory[method]:.1f}"])  # fmt: skip
        verdicts.append(f"- N = {count}: atlas pass / no-grad forward = {ratio:.3f} "
                        f"(bar ≤ 1.2: {'met' if ratio <= 1.2 else 'not met'}).")  # fmt: skip
    small, large = SIZES[quick]
    grow = growth[large]["filter_atlas"] - growth[small]["filter_atlas"]
    verdicts.append(
        f"- Peak memory growth of the atlas pass: {growth[small]['filter_atlas']:.1f} MiB at "
        f"N = {small}, {growth[large]['filter_atlas']:.1f} MiB at N = {large} (difference "
        f"{grow:+.1f} MiB; the no-grad forward: {growth[small]['no-grad forward']:.1f} → "
        f"{growth[large]['no-grad forward']:.1f} MiB)."
    )
    return [
        f"Atlas pass over N {source} (ResNet-8, K = {net.num_filters} filters, top-k = {TOP_K}, "
        f"batch {BATCH}, {THREADS} thread, CPU seconds, median of 3 interleaved rounds):",
        "",
        markdown_table(["N", "method", "CPU s", "images/s", "time / forward",
                        "peak memory growth (MiB)"], rows),  # fmt: skip
        "",
        *verdicts,
        "",
    ]


def _all_class_section(quick: bool) -> list[str]:
    from captum.attr import LayerGradCam

    from csg_interp.attribution import CSGAttribution

    net = _net()
    x = torch.rand(64, 1, 28, 28)
    csg = CSGAttribution.from_net(net)
    gradcam = LayerGradCam(net, net.gated_layer)
    classes = range(net.num_classes)

    def all_classes():
        with torch.no_grad():
            return csg.attribute_all_classes(x)

    def ten_attribute():
        with torch.no_grad():
            return [csg.attribute(x, target=c) for c in classes]

    def ten_gradcam():
        return [gradcam.attribute(x, target=c) for c in classes]

    calls = {"attribute_all_classes (1 call)": all_classes,
             "CSGAttribution.attribute × 10": ten_attribute,
             "Captum LayerGradCam × 10": ten_gradcam}  # fmt: skip
    times = interleaved_medians(calls, rounds=3 if quick else 7, repeats=1 if quick else 3,
                                warmup=1, clock=time.process_time)  # fmt: skip
    base = times["attribute_all_classes (1 call)"]
    rows = [[name, f"{seconds * 1e3:.1f}", f"{seconds / base:.2f}"] for name, seconds in
            times.items()]  # fmt: skip
    speedup = times["Captum LayerGradCam × 10"] / base
    return [
        f"All-class maps, C = {net.num_classes}, batch 64 of 28×28 images, demo ResNet-8, "
        f"{THREADS} thread, CPU ms per batch (median of interleaved rounds), maps at the layer's "
        "resolution:",
        "",
        markdown_table(["method", "CPU ms", "time / all-class call"], rows),
        "",
        f"- Speed-up of attribute_all_classes over ten LayerGradCam calls: {speedup:.1f}× "
        f"(bar ≥ 8: {'met' if speedup >= 8 else 'not met'}).",
        "",
    ]


def run(quick: bool = False) -> str:
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    lines = _atlas_section(quick) + _all_class_section(quick)
    lines += [f"Wall time of this bench: {time.perf_counter() - start:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--memory":
        _memory_child(sys.argv[2], int(sys.argv[3]))
    else:
        print(run(quick="--quick" in sys.argv))
