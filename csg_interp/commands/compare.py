"""Compare CSG runs with STD runs over seeds: per-run figures, mean ± std per side, the MIS
ratio, the share of the gap between STD's MIS and STD's logit ceiling that CSG closes, the
accuracy change, and the project's targets (every CSG seed's MIS above every STD seed's, gap
closed ≥ 50 %, accuracy within 1 point, L1-density ≤ 0.15) marked pass/fail.

Each run is measured once (its metrics.json is reused when the settings match). --json writes
the whole comparison. The exit status is 0 whether or not the targets pass; read the table.

Example: csg-interp compare --csg runs/csg_s0 runs/csg_s1 --std runs/std_s0 runs/std_s1
"""

from __future__ import annotations

import argparse

from .evaluate import add_common_arguments

HELP = "CSG vs STD over seeds: mean ± std, MIS ratio, gap closed, accuracy, targets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csg", nargs="+", required=True, metavar="RUN", help="CSG run directories")
    parser.add_argument("--std", nargs="+", required=True, metavar="RUN", help="STD run directories")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the comparison here")
    parser.add_argument("--gap-closed-min", type=float, default=0.5)
    parser.add_argument("--accuracy-drop-max", type=float, default=1.0, help="points")
    parser.add_argument("--density-max", type=float, default=0.15)
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from csg_interp.errors import check_output_parent
    from csg_interp.workflows import compare_run

    if args.json:
        check_output_parent(args.json, "json")  # before the measurements, not after
    result = compare_run(
        args.csg, args.std, args.split,
        targets={"gap_closed_min": args.gap_closed_min,
                 "accuracy_drop_max_points": args.accuracy_drop_max,
                 "l1_density_max": args.density_max},
        max_samples=args.max_samples, checkpoint=args.checkpoint, device=args.device,
        data_root=args.data_root, n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    print(result.summary())
    if args.json:
        print(f"wrote {result.save(args.json)}")
    return 0
