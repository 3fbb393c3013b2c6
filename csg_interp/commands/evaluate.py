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
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    parser.add_argument("--data-root", default=None, help="the data set's folder, if it moved")
    parser.add_argument("--jobs", type=int, default=-1,
                        help="parallel MI workers over classes (-1: all cores; values do not change)")
    parser.add_argument("--recompute", action="store_true", help="ignore a matching metrics.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory")
    parser.add_argument("--baseline", default=None, metavar="STD_RUN",
                        help="an STD run to compare with (same split and N)")
    add_common_arguments(parser)


def format_value(value: object, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_evaluation(result: dict) -> str:
    """The table ``evaluate`` prints, from an ``evaluate_run`` result (with or without baseline)."""
    rows = [("accuracy", "accuracy"), ("MIS", "mis"), ("MIS (normalised)", "mis_normalized"),
            ("MI ceiling", "mi_ceiling"), ("L1-density", "l1_density"),
            ("gate/MI agreement", "gate_mi_agreement")]  # fmt: skip
    base = result.get("baseline")
    lines = [f"{result['split']} split, N = {result['n']} (MI on {result['n_mi']})"]
    header = f"{'':20} {result['kind'].upper() + ' ' + str(result['run_dir']):>28}"
    if base:
        header += f" {base['kind'].upper() + ' ' + str(base['run_dir']):>28}"
    lines.append(header)
    for label, key in rows:
        line = f"{label:20} {format_value(result.get(key)):>28}"
        if base:
            line += f" {format_value(base.get(key)):>28}"
        lines.append(line)
    if base:
        comparison = result["comparison"]
        lines.append(
            f"MIS ratio {format_value(comparison['mis_ratio'], 3)}, gap to the STD ceiling "
            f"closed {format_value(comparison['gap_closed'], 3)}, accuracy "
            f"{comparison['delta_accuracy_points']:+.2f} points"
        )
    lines.append(f"filters per class (MI argmax): {result['filters_per_class_mi']}")
    if result.get("filters_per_class_gate"):
        lines.append(f"filters per class (gate argmax): {result['filters_per_class_gate']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from csg_interp.metrics.runs import evaluate_run

    result = evaluate_run(
        args.run_dir, args.split, baseline=args.baseline, max_samples=args.max_samples,
        checkpoint=args.checkpoint, device=args.device, data_root=args.data_root,
        n_jobs=args.jobs, recompute=args.recompute,
    )  # fmt: skip
    print(format_evaluation(result))
    print(f"wrote {args.run_dir}/metrics.json")
    return 0
