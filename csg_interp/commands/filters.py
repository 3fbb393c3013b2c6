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
    from csg_interp.metrics.runs import run_filter_table

    table, csv_path, json_path = run_filter_table(
        args.run_dir, args.split, out=args.out, max_samples=args.max_samples,
        checkpoint=args.checkpoint, device=args.device, data_root=args.data_root,
        n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    names = table.class_names
    by_mi = table.counts("mi")
    has_gate = table.rows and table.rows[0]["gate_class"] is not None
    by_gate = table.counts("gate") if has_gate else None
    print(f"{'class':>14} {'filters (MI)':>13} {'filters (gate)':>15}")
    for c, name in enumerate(names):
        gate_count = str(by_gate[c]) if by_gate else "–"
        print(f"{name:>14} {by_mi[c]:>13} {gate_count:>15}")
    if has_gate:
        agree = sum(bool(r["agree"]) for r in table.rows)
        print(f"gate and MI agree on {agree} of {len(table)} filters")
    print(f"wrote {csv_path} and {json_path}")
    return 0
