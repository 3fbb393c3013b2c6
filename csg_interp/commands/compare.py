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

from .evaluate import add_common_arguments, format_value

HELP = "CSG vs STD over seeds: mean ± std, MIS ratio, gap closed, accuracy, targets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csg", nargs="+", required=True, metavar="RUN", help="CSG run directories")
    parser.add_argument("--std", nargs="+", required=True, metavar="RUN", help="STD run directories")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the comparison here")
    parser.add_argument("--gap-closed-min", type=float, default=0.5)
    parser.add_argument("--accuracy-drop-max", type=float, default=1.0, help="points")
    parser.add_argument("--density-max", type=float, default=0.15)
    add_common_arguments(parser)


def _mean_std(summary: dict, key: str) -> str:
    entry = summary.get(key)
    if not isinstance(entry, dict):
        return "–"
    return f"{entry['mean']:.4f} ± {entry['std']:.4f}"


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from csg_interp.metrics.runs import compare_runs

    result = compare_runs(
        args.csg, args.std, args.split,
        targets={"gap_closed_min": args.gap_closed_min,
                 "accuracy_drop_max_points": args.accuracy_drop_max,
                 "l1_density_max": args.density_max},
        max_samples=args.max_samples, checkpoint=args.checkpoint, device=args.device,
        data_root=args.data_root, n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    print(f"{'run':40} {'accuracy':>9} {'MIS':>7} {'MIS norm':>9} {'ceiling':>8} {'density':>8}")
    for side in ("csg", "std"):
        for r in result[side]["runs"]:
            print(f"{side.upper() + ' ' + str(r['run_dir']):40} {format_value(r['accuracy']):>9} "
                  f"{format_value(r['mis']):>7} {format_value(r['mis_normalized']):>9} "
                  f"{format_value(r['mi_ceiling']):>8} {format_value(r['l1_density']):>8}")
    print()
    keys = [("accuracy", "accuracy"), ("MIS", "mis"), ("MIS (normalised)", "mis_normalized"),
            ("MI ceiling", "mi_ceiling"), ("L1-density", "l1_density")]  # fmt: skip
    print(f"{'mean ± std':20} {'CSG (%d)' % len(args.csg):>18} {'STD (%d)' % len(args.std):>18}")
    for label, key in keys:
        print(f"{label:20} {_mean_std(result['csg']['summary'], key):>18} "
              f"{_mean_std(result['std']['summary'], key):>18}")
    comparison = result["comparison"]
    print(f"\nMIS ratio {format_value(comparison['mis_ratio'], 3)}; gap closed "
          f"{format_value(comparison['gap_closed'], 3)}; accuracy "
          f"{comparison['delta_accuracy_points']:+.2f} points")
    for name, check in result["checks"].items():
        status = "PASS" if check["passed"] else "FAIL"
        print(f"  [{status}] {name}: {check['value']} (target {check['target']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
