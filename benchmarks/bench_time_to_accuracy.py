"""Time to accuracy: the trainer's STD and CSG runs beside a bare PyTorch loop of the same recipe.

Full Fashion-MNIST (the loader's 55k training / 5k validation split, the official 10k test split),
ResNet-8 16/32/64, batch 128, the default ``scratch`` recipe (SGD-Nesterov, one-cycle peak 0.2
with a quarter of the steps warming up, weight decay 5e-4 on weights, flip + 2-pixel shift), seed
0, both CPU threads. Each model's test accuracy is measured after every epoch; the time of those
probes is left out of the wall-time axis, which counts training plus, for the trainer, its own
validation pass and checkpoint writes -- the trainer's overhead.

The bare loop is written here, on purpose without the library's trainer: plain ``torch.optim.SGD``
over two parameter groups, ``torch.optim.lr_scheduler.OneCycleLR`` stepped per batch,
``torch.nn.functional.cross_entropy``; it borrows only the model builder, the data loader and the
batch augmentation so that the networks and the pixels are the same.

The trainer's runs are those of ``experiments/full_accuracy.py`` (``std_s0``, ``csg_s0``): the
benchmark reads their JSON when present and trains them otherwise. Minutes per model: run it
with the machine to itself. ``quick`` (``make bench`` with ``--quick``) only reports what exists;
``--overhead`` measures only the trainer-vs-bare-loop ratio (2 epochs on 20k images each) and
writes it to ``benchmarks/records/trainer_overhead.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

TITLE = "Time to accuracy: trainer vs a bare PyTorch loop"
RESULTS = ROOT / "experiments" / "results" / "full"
FIGURE = ROOT / "docs" / "_static" / "time_to_accuracy.png"
TARGET = 0.925


def bare_loop(
    seed: int = 0,
    epochs: int = 12,
    threads: int = 2,
    train_subset: int | None = None,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Train the STD ResNet-8 with a hand-written loop; test accuracy after every epoch."""
    import torch.nn.functional as F

    from csg_interp.data import load_dataset
    from csg_interp.models import build_backbone
    from csg_interp.training.augment import augment_batch
    from csg_interp.training.network import Normalize

    torch.set_num_threads(threads)
    options = {} if train_subset is None else {"train_subset": train_subset}
    bundle = load_dataset("fashion-mnist", seed=0, **options)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(Normalize(bundle.mean, bundle.std),
                                build_backbone("resnet8", 10, 1))  # fmt: skip
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
        lr=0.2, momentum=0.9, nesterov=True,
    )  # fmt: skip
    n, batch = len(bundle.train), 128
    steps = n // batch + (1 if n % batch >= 2 else 0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.2, total_steps=epochs * steps, pct_start=0.25
    )
    test_images, test_labels = bundle.test.tensors()
    curve, probe_seconds, start = [], 0.0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, batch):
            index = order[first:first + batch]
            if len(index) < 2:
                continue
            images, labels = bundle.train.tensors(index)
            images = augment_batch(images, "flip_shift", generator).contiguous(memory_format=memory)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        probe = time.perf_counter()
        wall = probe - start - probe_seconds
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(test_images[i:i + 512]).argmax(1)
                               == test_labels[i:i + 512]).sum())
                          for i in range(0, len(test_labels), 512))  # fmt: skip
        curve.append({"epoch": epoch, "wall_s": round(wall, 2),
                      "test_acc": correct / len(test_labels)})  # fmt: skip
        probe_seconds += time.perf_counter() - probe
    return {"variant": "bare_std", "seed": seed, "curve": curve,
            "train_wall_s": round(curve[-1]["wall_s"], 1), "torch_threads": threads,
            "load_average_at_end": list(os.getloadavg()),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip


def _result(name: str, make) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        result = make()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, path)
    return json.loads(path.read_text())


def _time_to(curve: list[dict[str, Any]], target: float) -> float | None:
    for row in curve:
        if row["test_acc"] >= target:
            return row["wall_s"]
    return None


def plot(results: dict[str, dict[str, Any]], path: Path = FIGURE) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for label, result in results.items():
        curve = result["curve"]
        ax.plot([r["wall_s"] / 60 for r in curve], [r["test_acc"] for r in curve], marker="o",
                markersize=3, label=label)  # fmt: skip
    ax.axhline(TARGET, color="0.5", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax.set(xlabel="wall time (min, 2 CPU threads)", ylabel="test accuracy",
           title="ResNet-8 on Fashion-MNIST, one-cycle SGD recipe, seed 0", ylim=(0.70, 0.94))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def overhead(train_subset: int = 20000, epochs: int = 2, threads: int = 2) -> dict[str, float]:
    """Wall time of ``epochs`` epochs on ``train_subset`` images: the trainer (``fit``) and the
    bare loop, one after the other, both in channels-last memory (the trainer's default).

    The bare loop's time counts its epochs only (no data loading, no validation). For the
    trainer three figures: ``trainer_epochs_s``, the sum of the ``train_time_s`` it records per
    epoch (the same work as the bare loop's); ``trainer_s``, the whole ``fit`` call (data
    loading, model building, the validation pass after every epoch, checkpoint and manifest
    writes); and their ratios to the bare loop.
    """
    import tempfile

    from csg_interp.training import TrainConfig, fit

    torch.set_num_threads(threads)
    bare = bare_loop(epochs=epochs, threads=threads, train_subset=train_subset, channels_last=True)
    bare_seconds = bare["curve"][-1]["wall_s"]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run = fit(TrainConfig(gate=False, epochs=epochs, train_subset=train_subset, device="cpu",
                              channels_last=True, out=str(Path(folder) / "std")),
                  progress=False)  # fmt: skip
        trainer_seconds = time.perf_counter() - start
    epochs_seconds = sum(float(row["train_time_s"]) for row in run.history)
    return {"bare_s": bare_seconds, "trainer_s": trainer_seconds,
            "trainer_epochs_s": epochs_seconds, "ratio": trainer_seconds / bare_seconds,
            "ratio_epochs": epochs_seconds / bare_seconds, "train_subset": train_subset,
            "epochs": epochs, "load_average_at_end": list(os.getloadavg())}  # fmt: skip


def run(quick: bool = False, full_bare_loop: bool = False) -> str:
    from _common import markdown_table

    present = {n: RESULTS / f"{n}.json" for n in ("std_s0", "csg_s0")}
    if quick and not all(p.exists() for p in present.values()):
        return "Not measured in quick mode (it trains two full-data models, ~35 min)."
    from full_accuracy import run_one

    results = {
        "trainer, STD (--no-gate)": _result("std_s0", lambda: run_one("std", 0)),
        "trainer, CSG (default)": _result("csg_s0", lambda: run_one("csg", 0)),
    }
    if full_bare_loop or (RESULTS / "bare_std_s0.json").exists():
        results["bare PyTorch loop, STD"] = _result("bare_std_s0", bare_loop)
    plot(results)
    rows = []
    for label, result in results.items():
        curve = result["curve"]
        reached = _time_to(curve, TARGET)
        rows.append([
            label, f"{curve[-1]['test_acc']:.4f}", f"{result['train_wall_s'] / 60:.1f} min",
            "not reached" if reached is None else f"{reached / 60:.1f} min",
            ", ".join(f"{x:.1f}" for x in result.get("load_average_at_end", [])),
        ])  # fmt: skip
    table = markdown_table(
        ["model", "test acc (last epoch)", "wall, 12 epochs", f"time to {TARGET}",
         "load average at end (1, 5, 15 min)"], rows,
    )  # fmt: skip
    text = (
        "Full Fashion-MNIST, ResNet-8 16/32/64, batch 128, the default recipe, seed 0, 2 threads; "
        "test accuracy after every epoch (probe time excluded). The trainer's wall time includes "
        f"its validation pass and checkpoint writes.\n\n{table}\n\n"
        f"Curves: `docs/_static/{FIGURE.name}` (shown in docs/training.md).\n"
    )
    if not quick:
        o = overhead()
        text += (
            f"\nTrainer overhead, side by side in one process: {o['epochs']} epochs on "
            f"{o['train_subset']} images, bare loop {o['bare_s']:.1f} s, the trainer's epochs "
            f"{o['trainer_epochs_s']:.1f} s (**ratio {o['ratio_epochs']:.3f}**), the whole `fit` "
            f"call (data loading, validation passes, checkpoints) {o['trainer_s']:.1f} s (ratio "
            f"{o['ratio']:.3f}) "
            "(target for the time to the STD target ≤ 1.05; the same recipe and number of steps, "
            "so the ratio of times to a given accuracy is this ratio when both runs reach it at "
            "the same epoch). Load average at the end: "
            + ", ".join(f"{x:.1f}" for x in o["load_average_at_end"]) + ".\n"
        )
    return text


OVERHEAD_RECORD = HERE / "records" / "trainer_overhead.json"


def record_overhead(path: Path = OVERHEAD_RECORD) -> dict[str, Any]:
    """Measure :func:`overhead` and write it, with the date and versions, to ``path``."""
    result = overhead()
    result.update(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  torch=torch.__version__, cpu_count=os.cpu_count())  # fmt: skip
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    if "--overhead" in sys.argv:  # only the side-by-side trainer/bare-loop ratio (minutes)
        print(json.dumps(record_overhead(), indent=1))
    else:
        print(run(quick="--quick" in sys.argv, full_bare_loop="--full-bare-loop" in sys.argv))
