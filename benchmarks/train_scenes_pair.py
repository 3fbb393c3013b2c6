"""Train the STD/CSG pair that ``bench_localization.py`` evaluates, on the scenes' train split.

The pair (ResNet-8 at widths 8/16/32, the ``scratch`` preset with batch 48 and milestones
0.6/0.85, 8 epochs, 3000 scenes, same seed and data) is trained with
:func:`csg_interp.training.fit` on ``load_dataset("scenes")`` -- Fashion-MNIST items among
scikit-learn digits on 64×64 canvases -- and written to ``benchmarks/assets/scenes_pair/{csg,std}``
as ordinary run directories (``config.json``, ``manifest.json``, ``metrics.jsonl``, ``last.pt``;
``best.pt`` is dropped to keep the commit small: the benchmark uses ``last``, the paper's choice).

Usage::

    python benchmarks/train_scenes_pair.py   # the committed pair (≈ 15-40 min on 2 shared cores)
    python benchmarks/train_scenes_pair.py --quick --out /tmp/pair   # a smoke run (a minute)
    python benchmarks/train_scenes_pair.py --models csg --threads 1 &  # the two models in parallel
    python benchmarks/train_scenes_pair.py --models std --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parent / "assets" / "scenes_pair"
#: ResNet-8 at half the default widths (K = 32 gated filters for C = 10 classes): a 64×64 scene
#: costs about 5× a 28×28 item, and the pair must train on a shared 2-core machine. Batch 48 and
#: later learning-rate milestones than the preset's (0.4/0.6/0.8) give the 8-epoch budget more
#: steps at the full rate: with the preset's batch 128 the STD model stalled at 31 % val accuracy.
#: The gate settings are pinned (gate lr 1e-2, λ 1e-3, τ 0.1: the ``scratch`` preset when the
#: committed pair was trained) so that later preset changes do not change this script.
WIDTHS = (8, 16, 32)


def train_pair(
    out: Path = ASSETS,
    epochs: int = 8,
    train_size: int = 3000,
    val_size: int = 500,
    seed: int = 0,
    threads: int = 2,
    device: str = "cpu",
    models: tuple[str, ...] = ("csg", "std"),
    batch_size: int | None = 48,
    milestones: list[float] | None = (0.6, 0.85),
    gate_lr: float = 1e-2,
    lam: float = 1e-3,
) -> dict[str, dict]:
    """Train the CSG model and its STD twin; returns each run's final history row."""
    from csg_interp.training import TrainConfig, fit

    torch.set_num_threads(threads)
    summary = {}
    for name, gate in (("csg", True), ("std", False)):
        if name not in models:
            continue
        config = TrainConfig(
            dataset="scenes", model="resnet8", widths=list(WIDTHS), epochs=epochs, gate=gate,
            seed=seed, train_subset=train_size, val_size=val_size, out=str(out / name),
            device=device, batch_size=batch_size,
            milestones=list(milestones) if milestones else None, gate_lr=gate_lr, lam=lam, tau=0.1,
        )  # fmt: skip
        start = time.perf_counter()
        run = fit(config, progress=False)
        slim_checkpoint(Path(run.run_dir))
        summary[name] = {**run.history[-1], "train_seconds": round(time.perf_counter() - start, 1)}
        print(name, json.dumps(summary[name]), flush=True)
    return summary


def slim_checkpoint(run_dir: Path) -> None:
    """Drop ``best.pt`` and the optimiser moments in ``last.pt`` (under 1 MB for the commit).

    ``load_run`` still loads the network; resuming the run is no longer possible.
    """
    from csg_interp.training.checkpoint import safe_torch_load, save_checkpoint

    (run_dir / "best.pt").unlink(missing_ok=True)
    state = safe_torch_load(run_dir / "last.pt")
    state["optimizers"] = {}
    save_checkpoint(state, run_dir / "last.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=3000)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--milestones", type=float, nargs="+", default=[0.6, 0.85])
    parser.add_argument("--gate-lr", type=float, default=1e-2)
    parser.add_argument("--lam", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", default=["csg", "std"], choices=["csg", "std"])
    parser.add_argument("--quick", action="store_true", help="2 epochs on 256 scenes (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.train_size, args.val_size = 2, 256, 128
    train_pair(
        args.out, args.epochs, args.train_size, args.val_size, args.seed, args.threads,
        args.device, tuple(args.models), args.batch_size, args.milestones, args.gate_lr,
        args.lam,
    )


if __name__ == "__main__":
    main()
