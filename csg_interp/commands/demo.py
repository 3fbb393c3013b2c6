"""Run the end-to-end demo: train an STD/CSG pair on Fashion-MNIST (digits when it is missing),
then evaluate, explain, localize, detect and write the report, printing where everything is.

Stages are plain functions in ``csg_interp.demo`` run in order; each prints what it wrote.
"""

from __future__ import annotations

import argparse

HELP = "train an STD/CSG pair and run every analysis on it (what `make demo` runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder")
    parser.add_argument(
        "--dataset", default="auto", choices=["auto", "fashion-mnist", "digits"],
        help="auto: Fashion-MNIST when its files are present, else digits (said loudly)",
    )
    parser.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST idx files")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny budget (seconds), for smoke tests"
    )
    parser.add_argument(
        "--stages", nargs="*", default=None,
        help="run only these stages (default: all, in order)",
    )


def run(args: argparse.Namespace) -> int:
    from csg_interp.demo import run_demo

    run_demo(
        out=args.out, dataset=args.dataset, data_root=args.data_root, device=args.device,
        seed=args.seed, quick=args.quick, stages=args.stages,
    )
    return 0
