"""CPU training-step speed: threads, channels-last memory and ``torch.compile``.

Times the trainer's own ``Trainer.train_step`` (STD twin and CSG step: forward, loss, backward,
SGD-Nesterov step; for CSG also the hinge, the gate's Adam and the projection) on one fixed batch
of 128 Fashion-MNIST-sized images with ResNet-8 16/32/64, wall time, median of interleaved rounds.
Variants:

* 2 threads, contiguous (NCHW) memory: the default;
* 1 thread;
* ``channels_last`` (NHWC) network and inputs (``--channels-last``), 2 threads;
* ``torch.compile`` of the network (inductor, default mode), 2 threads; its compile time is
  reported apart. Compilation needs a C++ compiler at run time, so it is never the library's
  default and never used in the test suite.

Run it with the machine to itself: a second process halves what two threads can do.
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

TITLE = "CPU training step: threads, channels-last, torch.compile"
BATCH, CLASSES, SIZE = 128, 10, 28


def _step(bundle: DataBundle, kind: str, channels_last: bool = False, compiled: bool = False):
    config = TrainConfig(dataset="synthetic", model="resnet8", batch_size=BATCH, device="cpu",
                         out="unused", gate=kind == "csg", channels_last=channels_last)  # fmt: skip
    trainer = Trainer(config, bundle=bundle, progress=False)
    images, labels = bundle.train.tensors()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    compile_seconds = None
    if compiled:
        trainer.model = torch.compile(trainer.net)
        start = time.perf_counter()
        trainer.train_step(kind, images, labels)  # compiles forward and backward
        trainer.train_step(kind, images, labels)
        compile_seconds = time.perf_counter() - start
    return (lambda: trainer.train_step(kind, images, labels)), compile_seconds


def _with_threads(threads: int, fn):
    def call():
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            fn()
        finally:
            torch.set_num_threads(previous)
    return call


def run(quick: bool = False) -> str:
    rounds, repeats = (3, 2) if quick else (7, 4)
    bundle = synthetic_bundle(BATCH, CLASSES, SIZE)
    rows, notes = [], []
    for kind in ("std", "csg"):
        default, _ = _step(bundle, kind)
        nhwc, _ = _step(bundle, kind, channels_last=True)
        candidates = {
            "2 threads (default)": _with_threads(2, default),
            "1 thread": _with_threads(1, default),
            "channels_last, 2 threads": _with_threads(2, nhwc),
        }
        if not quick:
            try:
                torch.set_num_threads(2)
                compiled, seconds = _step(bundle, kind, compiled=True)
                candidates["torch.compile, 2 threads"] = _with_threads(2, compiled)
                notes.append(f"{kind}: compilation took {seconds:.0f} s")
            except Exception as error:  # no compiler, or an inductor failure: say so
                notes.append(f"{kind}: torch.compile failed ({type(error).__name__}: {error})")
        times = interleaved_medians(candidates, rounds=rounds, repeats=repeats)
        base = times["2 threads (default)"]
        for name, seconds in times.items():
            rows.append([kind.upper(), name, f"{seconds * 1e3:.0f} ms", f"{base / seconds:.2f}×"])
    table = markdown_table(["step", "variant", "wall per step", "speed vs default"], rows)
    return (
        f"`Trainer.train_step` on ResNet-8 16/32/64, batch {BATCH}×1×{SIZE}×{SIZE}, SGD-Nesterov "
        f"(the default recipe), wall time, median of {rounds} interleaved rounds × {repeats} "
        f"steps.\n\n{table}\n\n" + "; ".join(notes) + ("." if notes else "")
    )


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
