"""GPU throughput: images/s of a full STD training step vs a full CSG training step.

A step is what the trainer does: forward, loss, backward, Adam step; the CSG step forwards both
heads from one backbone pass, adds the hinge and projects the gate after the step. Measured per
model (ResNet-20 at 32 px as in the paper's CIFAR-10 row, torchvision ResNet-18 and ResNet-50 at
224 px), in float32 and in bf16 autocast with channels-last, on synthetic data already on the GPU
(the data path is not timed). Interleaved repeats, median, ``torch.cuda.synchronize`` around each
timed call.

Without a CUDA device it returns a section that says "not measured" and why -- nothing depends
on it. On a lent GPU machine (its own Python and torch): ``PYTHONPATH=. python benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, markdown_table  # noqa: E402

TITLE = "GPU throughput: STD vs CSG training step"

# (model, image size, classes, batch)
_CASES = [("resnet20", 32, 10, 256), ("resnet18", 224, 100, 128), ("resnet50", 224, 100, 64)]
_QUICK_CASES = [("resnet20", 32, 10, 128), ("resnet18", 224, 100, 64)]


def _build(name: str, size: int, classes: int, channels_last: bool):
    from csg_interp.models import build_backbone
    from csg_interp.training.network import CSGNet

    net = CSGNet.from_backbone(build_backbone(name, classes, 3)).cuda().train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _steps(net, x, y, amp_dtype, lam: float = 1e-3, tau: float = 0.1):
    from csg_interp.training.gate import sparsity_hinge

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def autocast():
        return torch.autocast("cuda", dtype=amp_dtype, enabled=amp_dtype is not None)

    def std_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()

    def csg_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            _, csg_logits = net(x, y)
            loss = F.cross_entropy(csg_logits, y) + lam * sparsity_hinge(net.gate.weight, tau)
        loss.backward()
        optimizer.step()
        net.gate.project_()

    def synced(fn):
        def call():
            fn()
            torch.cuda.synchronize()

        return call

    return synced(std_step), synced(csg_step)


def _measure(case, precision: str, rounds: int) -> list[object]:
    name, size, classes, batch = case
    channels_last = precision != "fp32"
    amp_dtype = torch.bfloat16 if precision.startswith("bf16") else None
    torch.manual_seed(0)
    net = _build(name, size, classes, channels_last)
    x = torch.rand(batch, 3, size, size, device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    std_step, csg_step = _steps(net, x, y, amp_dtype)
    times = interleaved_medians({"std": std_step, "csg": csg_step}, rounds=rounds, repeats=5, warmup=3)
    del net, x, y
    torch.cuda.empty_cache()
    return [
        f"{name} @ {size}px, batch {batch}", precision,
        f"{batch / times['std']:.0f}", f"{batch / times['csg']:.0f}",
        f"**{times['csg'] / times['std']:.3f}**",
    ]  # fmt: skip


def run(quick: bool = False) -> str:
    lines = [f"## {TITLE}", ""]
    if not torch.cuda.is_available():
        lines += [
            "**Not measured**: no CUDA device on the machine that ran this benchmark. No GPU was",
            "lent to the session that wrote it either, so no GPU number is claimed anywhere in the",
            "docs. On a GPU machine: `PYTHONPATH=. python benchmarks/bench_gpu.py`.",
        ]
        return "\n".join(lines) + "\n"
    rounds = 3 if quick else 7
    rows = []
    for case in _QUICK_CASES if quick else _CASES:
        for precision in ("fp32", "bf16+channels_last"):
            rows.append(_measure(case, precision, rounds))
    props = torch.cuda.get_device_properties(0)
    lines += [
        f"Device: {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}. Synthetic data on the GPU; a step = forward + loss + backward "
        "+ Adam (+ hinge and projection for CSG). Median of interleaved rounds "
        f"({rounds} rounds × 5 steps, 3 warm-up steps).",
        "",
        markdown_table(["model", "precision", "STD images/s", "CSG images/s", "CSG / STD time"], rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
