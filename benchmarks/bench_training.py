"""Training step cost: CSG step vs STD step with the same trainable parameters.

Times the trainer's own ``Trainer.train_step`` (forward, loss, full backward, Adam step and, for
CSG/joint, the hinge and the gate projection) on one fixed batch of 128 Fashion-MNIST-sized
images with ResNet-8 16/32/64, one thread, CPU seconds of this process (``time.process_time``,
robust to other processes on a shared machine), median of interleaved rounds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, markdown_table, synthetic_bundle  # noqa: E402

from csg_interp.data import DataBundle  # noqa: E402
from csg_interp.training import TrainConfig, Trainer  # noqa: E402

TITLE = "Training step: CSG vs STD"
BATCH, CLASSES, SIZE = 128, 10, 28


def _trainer(bundle: DataBundle, out: str, **options) -> Trainer:
    config = TrainConfig(dataset="synthetic", model="resnet8", batch_size=BATCH, device="cpu",
                         out=out, **options)  # fmt: skip
    return Trainer(config, bundle=bundle, progress=False)


def run(quick: bool = False) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> str:
    rounds, repeats = (3, 2) if quick else (9, 4)
    bundle = synthetic_bundle(BATCH, CLASSES, SIZE)
    images, labels = bundle.train.tensors()
    # Same trainable parameters on both paths: every backbone/head parameter (+ the C×K gate).
    same = _trainer(bundle, "unused-a", std_stages="all", csg_stages="all")
    joint = _trainer(bundle, "unused-b", schedule="joint")
    reference_scope = _trainer(bundle, "unused-c", std_stages="all", csg_stages=1)
    plain = _trainer(bundle, "unused-d", gate=False)
    steps = {
        "STD (CSGNet without gate)": lambda: plain.train_step("std", images, labels),
        "STD (gated net, STD epoch)": lambda: same.train_step("std", images, labels),
        "CSG (same params)": lambda: same.train_step("csg", images, labels),
        "joint": lambda: joint.train_step("joint", images, labels),
        "CSG (last stage + head + gate only)": lambda: reference_scope.train_step("csg", images, labels),
    }
    times = interleaved_medians(steps, rounds=rounds, repeats=repeats, warmup=2, clock=time.process_time)
    base = times["STD (CSGNet without gate)"]
    rows = [[name, f"{seconds * 1e3:.1f} ms", f"{seconds / base:.3f}"] for name, seconds in times.items()]
    table = markdown_table(["step", "CPU time / step", "ratio to STD"], rows)
    ratio = times["CSG (same params)"] / base
    verdict = "meets" if ratio <= 1.05 else "misses"
    return (
        f"`Trainer.train_step` on ResNet-8 (16/32/64), batch {BATCH}×1×{SIZE}×{SIZE}, {CLASSES} "
        f"classes, Adam, full backward; CSG adds the gate gather, the λ·hinge and the `max` "
        f"projection; joint computes both heads from one backbone pass. 1 thread, CPU seconds "
        f"(`time.process_time`), median of {rounds} interleaved rounds × {repeats} steps after 2 "
        f"warm-up steps.\n\n{table}\n\nCSG/STD with the same trainable parameters: **{ratio:.3f}** "
        f"({verdict} the ≤ 1.05 target; the prototype measured 1.01). The last row is the "
        f"default `scratch` CSG step (early stages receive gradients but are not stepped).\n"
    )


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
