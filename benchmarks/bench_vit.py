"""CSGAttribution on a vision transformer: time and peak memory against a no-grad forward.

The ViT is timm's ``VisionTransformer`` for 28 px grey images, patch 4 (a 7×7 grid),
``embed_dim`` 96, 6 blocks, 3 heads, average token pooling, no class token, no ``fc_norm`` -- the
head for which ``CSGAttribution``'s ``cam`` is exact (docs/models.md). It is the size
``experiments/vit_fashion_mnist.py`` first planned; the experiment now trains a smaller one
(64 channels, 4 blocks) to fit the CPU, and the ratios measured here are for the larger model. Random weights (cost does not depend on training), a random gate, batch 64.

Time: CPU time of the single-threaded process (``time.process_time``: on the shared 2-core
machine wall time mostly measures the neighbours), median of interleaved rounds of
``net(x)`` under ``torch.no_grad()``, ``CSGAttribution.attribute(x, target)`` (maps N×1×7×7) and
the same followed by bilinear upsampling to 28×28. Peak memory: each call runs once in a fresh
subprocess; the growth is the kernel's peak RSS (``VmHWM``, reset just before the call through
``/proc/self/clear_refs``) minus the RSS before it (Linux only), median of 3 processes.

Run: ``python benchmarks/bench_vit.py [--quick]`` (needs timm: ``pip install 'csg_interp[timm]'``).
"""

from __future__ import annotations

import json
import os
import statistics
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

TITLE = "CSGAttribution on a vision transformer (timm ViT)"
THREADS = 1
METHODS = ("no-grad forward", "CSGAttribution (cam, 7×7)", "CSGAttribution + upsample to 28×28")
VIT_OPTIONS = dict(
    img_size=28, patch_size=4, embed_dim=96, depth=6, num_heads=3, mlp_ratio=4.0,
    class_token=False, global_pool="avg", fc_norm=False,
)  # fmt: skip
BATCH, QUICK_BATCH = 64, 32


def _build(batch: int):
    from csg_interp.models import build_backbone
    from csg_interp.training import CSGNet

    torch.manual_seed(0)
    model = build_backbone("timm:vit_tiny_patch16_224", 10, 1, options=VIT_OPTIONS)
    net = CSGNet.from_backbone(model, normalize=((0.286,), (0.353,)), in_channels=1).eval()
    with torch.no_grad():
        net.gate.weight.uniform_(0.0, 1.0)
    x = torch.rand(batch, 1, 28, 28)
    with torch.no_grad():
        targets = net(x).argmax(1)
    return net, x, targets


def _callable(method: str, net, x, targets):
    from captum.attr import LayerAttribution

    from csg_interp.attribution import CSGAttribution

    csg = CSGAttribution.from_net(net, mode="cam")
    if method == "no-grad forward":
        def call():
            with torch.no_grad():
                return net(x)
    elif method == "CSGAttribution (cam, 7×7)":
        def call():
            return csg.attribute(x, target=targets)
    elif method == "CSGAttribution + upsample to 28×28":
        def call():
            return LayerAttribution.interpolate(csg.attribute(x, target=targets), (28, 28),
                                                "bilinear")  # fmt: skip
    else:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    return call


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _memory_child(method: str, batch: int) -> None:
    """In a fresh process: one call; print the peak-RSS growth in MiB as JSON."""
    torch.set_num_threads(THREADS)
    net, x, targets = _build(batch)
    call = _callable(method, net, x, targets)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_mib("VmRSS")
    call()
    print(json.dumps({"growth_mib": max(_status_mib("VmHWM") - before, 0.0)}))


def _memory(method: str, batch: int, repeats: int = 3) -> float:
    """Median over ``repeats`` fresh processes (one process's RSS growth is noisy at a few MiB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS))
    growths = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--memory", method, str(batch)],
            capture_output=True, text=True, env=env, check=True, timeout=300,
        )  # fmt: skip
        growths.append(json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"])
    return statistics.median(growths)


def measure(quick: bool = False) -> dict:
    """Times (s per call) and memory growths (MiB) of every method, and the ratios."""
    torch.set_num_threads(THREADS)
    batch = QUICK_BATCH if quick else BATCH
    net, x, targets = _build(batch)
    calls = {method: _callable(method, net, x, targets) for method in METHODS}
    times = interleaved_medians(calls, rounds=5 if quick else 9, repeats=3, warmup=1,
                                clock=time.process_time)  # fmt: skip
    memory = {method: _memory(method, batch) for method in METHODS}
    base_t, base_m = times["no-grad forward"], memory["no-grad forward"]
    return {
        "batch": batch, "vit": VIT_OPTIONS, "times_s": times, "memory_mib": memory,
        "time_ratio": {m: times[m] / base_t for m in METHODS},
        "memory_ratio": {m: memory[m] / max(base_m, 1e-9) for m in METHODS},
    }  # fmt: skip


def run(quick: bool = False) -> str:
    result = measure(quick)
    rows = [
        [method, f"{result['batch'] / result['times_s'][method]:.0f}",
         f"{result['time_ratio'][method]:.3f}", f"{result['memory_mib'][method]:.1f}",
         f"{result['memory_ratio'][method]:.3f}"]
        for method in METHODS
    ]  # fmt: skip
    cam = "CSGAttribution (cam, 7×7)"
    time_ok = result["time_ratio"][cam] <= 1.1
    memory_ok = result["memory_ratio"][cam] <= 1.05
    return "\n".join([
        f"ViT (timm, 28 px, patch 4, embed 96, 6 blocks, average pooling, no fc_norm), batch "
        f"{result['batch']}, {THREADS} thread, CPU time per call (median of interleaved rounds); "
        "peak-RSS growth of one call in a fresh process (median of 3).",
        "",
        markdown_table(["method", "images/s", "time × no-grad forward", "peak growth MiB",
                        "memory × no-grad forward"], rows),  # fmt: skip
        "",
        f"- Targets (≤ 1.1× time, ≤ 1.05× peak memory growth of a no-grad forward): time "
        f"{result['time_ratio'][cam]:.3f}× ({'met' if time_ok else 'NOT met'}), memory "
        f"{result['memory_ratio'][cam]:.3f}× ({'met' if memory_ok else 'NOT met'}).",
    ])  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--memory":
        _memory_child(sys.argv[2], int(sys.argv[3]))
    else:
        print(run(quick="--quick" in sys.argv))
