"""Detect adversarial samples from gate statistics: attack a run's test images (FGSM/PGD from
captum.robust, L∞ in [0, 1] pixel units, non-adaptive), score clean and attacked images with the
gate-consistency detector and the baselines, and write ROC AUC / TPR at 5 % FPR per ε and per
score to RUN_DIR/detect/metrics.json with ROC figures next to it.

Example: csg-interp detect runs/csg --baseline runs/std --attack pgd --eps 0.03 0.1

Cross-attack test of the supervised detector (fit on FGSM, test on PGD):
csg-interp detect runs/csg --attack pgd --logistic --fit-attack fgsm
"""

from __future__ import annotations

import argparse

HELP = "adversarial-sample detection from gate statistics (ROC AUC, TPR at 5 % FPR per ε)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory to evaluate (CSG model)")
    parser.add_argument("--baseline", default=None, metavar="RUN",
                        help="run directory to compare with (usually the STD twin)")
    parser.add_argument("--attack", default="pgd", choices=["pgd", "fgsm"], help="attack")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.03, 0.1],
                        help="L∞ radii in [0, 1] pixel units")
    parser.add_argument("--steps", type=int, default=10,
                        help="PGD steps (step size 2.5·eps/steps, random start)")
    parser.add_argument("--targeted", action="store_true",
                        help="targeted attack towards a random other class")
    parser.add_argument("--loss", default="ce", choices=["ce", "margin"], help="attack loss")
    parser.add_argument("--num-images", type=int, default=1000, help="test images to attack")
    parser.add_argument("--fit-images", type=int, default=2000,
                        help="validation images to fit the MI gate and Mahalanobis statistics on")
    parser.add_argument("--logistic", action="store_true",
                        help="also fit a logistic regression on gate statistics per ε on attacked "
                             "validation images (supervised; attacks --logistic-images more images)")
    parser.add_argument("--logistic-images", type=int, default=1000,
                        help="validation images attacked to fit the logistic detector")
    parser.add_argument("--fit-attack", default=None, choices=["pgd", "fgsm"],
                        help="attack on the validation images the logistic detector is fitted on "
                             "(same ε and steps; default: --attack); needs --logistic")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None, help="the data set's folder, if it moved")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/detect)")


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows import detect_run

    result = detect_run(
        args.run_dir, args.baseline, method=args.attack, eps=args.eps, num_images=args.num_images,
        fit_images=args.fit_images, steps=args.steps, targeted=args.targeted, loss=args.loss,
        checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size,
        seed=args.seed, logistic=args.logistic, logistic_images=args.logistic_images,
        fit_attack=args.fit_attack, data_root=args.data_root, out=args.out,
    )
    print(result.summary())
    return 0
