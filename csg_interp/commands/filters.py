"""Which filter serves which class: one row per filter of the gated layer with its class by the
gate (argmax_c G[c, k]) and by mutual information (argmax_c M[c, k]), its gate value, the number
of classes its gate keeps open, and its MI with every class.

Writes RUN_DIR/filters.csv and RUN_DIR/filters.json (or into --out). The MI matrix comes from
RUN_DIR/metrics.json when it matches the split, else it is measured (and metrics.json written).
An STD run has no gate: its gate columns are empty.

Example: csg-interp filters runs/csg --split test
"""

from __future__ import annotations

import argparse

from .evaluate import add_common_arguments

HELP = "the filter table: class by gate and by MI per filter (filters.csv / filters.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows import filters_run

    result = filters_run(
        args.run_dir, args.split, out=args.out, max_samples=args.max_samples,
        checkpoint=args.checkpoint, device=args.device, data_root=args.data_root,
        n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    print(result.summary())
    return 0
