"""Export the plain network of a run (``features`` + ``head``, without the gate, which inference
never uses) to one file of tensors and primitives. Load it back with
``csg_interp.training.load_network(PATH)``, or ``torch.load(PATH, weights_only=True)``.
"""

from __future__ import annotations

import argparse

from .run_args import add_run_arguments, load_run_from_args

HELP = "write a run's plain network (no gate) to a file for inference"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--out", dest="path", required=True,
                        help="the file to write, e.g. model.pt (its folder must exist)")
    parser.add_argument("--parents", action="store_true",
                        help="create the missing folders above --out")


def run(args: argparse.Namespace) -> int:
    from csg_interp.training import export_network

    trained = load_run_from_args(args)
    path = export_network(trained, args.path, parents=args.parents)
    kind = "CSG" if trained.has_gate else "STD"
    print(
        f"exported the plain network of {trained.run_dir} ({kind} {trained.config.model}, "
        f"checkpoint {trained.checkpoint}, epoch {trained.epochs_done}) to {path}"
    )
    return 0
