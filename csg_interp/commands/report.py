"""Write one self-contained ``report.html`` for a run: training curves, metric tables, the gate,
the filter table, explanations, localization examples and detection ROC curves -- whatever the
run directory holds (figures embedded as base64 PNG, no external URL). Prints its path.
"""

from __future__ import annotations

import argparse

HELP = "write a self-contained report.html for a run (and an optional baseline run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run directory (csg-interp train --out)"
    )
    parser.add_argument(
        "--baseline", metavar="RUN", default=None,
        help="a run to compare with, usually the STD twin (side-by-side metrics, four-panel "
        "figure, MI comparison)",
    )
    parser.add_argument(
        "--out", default=None, help="HTML file to write (default: RUN_DIR/report.html)"
    )
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"],
                        help="checkpoint whose gate and weights are drawn")
    parser.add_argument("--max-images", type=int, default=24,
                        help="images embedded per analysis folder (explain/, localize/, detect/)")


def run(args: argparse.Namespace) -> int:
    from csg_interp.errors import check_output_parent
    from csg_interp.report import write_report

    if args.out:
        check_output_parent(args.out, "out")
    result = write_report(
        args.run_dir, baseline=args.baseline, out=args.out, checkpoint=args.checkpoint,
        max_images=args.max_images,
    )
    print(f"report: {result.path} ({len(result.figures)} figures; sections: "
          f"{', '.join(result.sections)})")
    return 0
