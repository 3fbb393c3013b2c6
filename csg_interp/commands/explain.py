"""Explain images with a trained run: per image, the class map of the predicted class
(CSGAttribution) and the activation maps of the filters that fired for it, with their gate values.

Writes RUN_DIR/explain/<name>.npz and <name>.png per image plus index.json (read by the report
and the gallery). --images takes test-set indices (e.g. 0 17 42) and/or image files; without it
the first --num-images test images are used. An STD run is explained through gate_from_mi of its
MI matrix on validation images, so both models are explained the same way.

Example: csg-interp explain runs/csg --images 0 1 2 photo.png --top-n 6
"""

from __future__ import annotations

import argparse

HELP = "class maps and the filters that fired for the predicted class (npz + png + index.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory")
    parser.add_argument("--images", nargs="*", default=None, metavar="INDEX_OR_FILE",
                        help="test-set indices and/or image files (resized to the run's size)")
    parser.add_argument("--num-images", type=int, default=8,
                        help="first N test images when --images is not given")
    parser.add_argument("--mode", default="cam", choices=["cam", "activation", "top_filters"],
                        help="class map: cam = Σ G·W·A, activation = Σ G·A, top_filters")
    parser.add_argument("--gate", default="auto", choices=["auto", "learned", "mi"],
                        help="auto: the learned gate, or gate_from_mi for an STD run")
    parser.add_argument("--top-n", type=int, default=8, help="at most this many filters per image")
    parser.add_argument("--min-gate", type=float, default=0.5,
                        help="a filter of class c needs G[c, k] >= this")
    parser.add_argument("--fit-images", type=int, default=2000,
                        help="validation images for the MI gate")
    parser.add_argument("--sanity", type=int, default=0, metavar="N",
                        help="also run the cascading-randomisation sanity check on N of the "
                             "images (writes sanity.json / sanity.md)")
    parser.add_argument("--jobs", type=int, default=-1,
                        help="workers for the MI matrix (-1: all cores)")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--data-root", default=None, help="the data set's folder, if it moved")
    parser.add_argument("--no-figures", action="store_true", help="write only npz + index.json")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/explain)")


def run(args: argparse.Namespace) -> int:
    from csg_interp.workflows import explain_run

    result = explain_run(
        args.run_dir, images=args.images, num_images=args.num_images, gate=args.gate,
        mode=args.mode, top_n=args.top_n, min_gate=args.min_gate, fit_images=args.fit_images,
        checkpoint=args.checkpoint, device=args.device, data_root=args.data_root, out=args.out,
        figures=not args.no_figures, n_jobs=args.jobs, sanity_images=args.sanity,
    )  # fmt: skip
    print(result.summary())
    return 0
