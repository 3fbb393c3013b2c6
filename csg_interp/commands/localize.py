"""Weakly supervised localization of a trained run (and optionally its baseline).

Maps of the ground-truth class from every method (the CSG model's gate-weighted CAM, CAM,
Captum Grad-CAM, pytorch-grad-cam Grad-CAM++) are turned into boxes and scored: GT-known Loc and
Top-1 Loc at a threshold chosen on the validation split, Grad-CAM's fixed 15 % protocol,
MaxBoxAcc v1/v2, the CSG paper's mask IoU (CAM top 30 % and per-filter 70th percentile) and the
energy-based pointing game. A run trained on ``scenes`` or ``voc-part`` is scored on its own
val/test splits; a run trained on plain Fashion-MNIST (or digits) items is scored on scenes built
from its val/test items (the network is fully convolutional with global pooling, so it runs on
the larger canvas). Writes ``metrics.json`` and overlay PNGs (true box green, predicted red) to
``RUN_DIR/localize/``.
"""

from __future__ import annotations

import argparse

HELP = "box localization metrics and overlays (GT-known/Top-1 Loc, MaxBoxAcc, mask IoU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (csg-interp train)")
    parser.add_argument(
        "--baseline", default=None, help="a second run (e.g. the STD twin) scored the same way"
    )
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument(
        "--methods", nargs="+", default=None,
        help="map methods (default: csg cam gradcam gradcam++; csg only on a model with a gate)",
    )  # fmt: skip
    parser.add_argument(
        "--val-size", type=int, default=500, help="validation images (threshold choice)"
    )
    parser.add_argument("--test-size", type=int, default=1000, help="test images scored")
    parser.add_argument("--sweep-step", type=float, default=0.01, help="MaxBoxAcc threshold step")
    parser.add_argument("--overlays", type=int, default=8, help="test images drawn per method")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/localize)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows import localize_run

    result = localize_run(
        args.run_dir, baseline=args.baseline, checkpoint=args.checkpoint, methods=args.methods,
        val_size=args.val_size, test_size=args.test_size, sweep_step=args.sweep_step,
        overlays=args.overlays, out=args.out, device=args.device, batch_size=args.batch_size,
    )  # fmt: skip
    print(result.summary())
    return 0
