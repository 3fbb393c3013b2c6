"""Measure a trained run the paper's way: STD-path accuracy, mutual-information score (MIS, raw
and per-filter normalised), its ceiling MI(logit_c; y == c), L1-density of the gate and the
gate/MI agreement, on a split of the run's own data set (default: test).

Writes RUN_DIR/metrics.json (versioned; reused by `filters` and `compare` when the settings
match) and prints a table. With --baseline STD_RUN both are measured on the same split and N and
the table gains the MIS ratio, the share of the STD→ceiling gap closed and the accuracy change.

Example: csg-interp evaluate runs/csg --baseline runs/std
"""

from __future__ import annotations

import argparse

HELP = "accuracy, MIS, ceiling, L1-density of a run (metrics.json); --baseline compares"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by evaluate, filters and compare."""
    parser.add_argument("--split", default="test", choices=["test", "val", "train"],
                        help="the split to measure on (the paper: test)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="stratified cap on the samples of the MI figures (compare at equal N)")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--data-root", default=None, help="the data set's folder, if it moved")
    parser.add_argument("--jobs", type=int, default=-1,
                        help="parallel MI workers over classes (-1: all cores; values do not change)")
    parser.add_argument("--recompute", action="store_true", help="ignore a matching metrics.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory")
    parser.add_argument("--baseline", default=None, metavar="STD_RUN",
                        help="an STD run to compare with (same split and N)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows import evaluate_run

    result = evaluate_run(
        args.run_dir, args.split, baseline=args.baseline, max_samples=args.max_samples,
        checkpoint=args.checkpoint, device=args.device, data_root=args.data_root,
        n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    print(result.summary())
    print(f"wrote {args.run_dir}/metrics.json")
    return 0
