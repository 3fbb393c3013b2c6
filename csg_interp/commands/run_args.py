"""Arguments shared by every command that reads a trained run (``RUN_DIR --checkpoint``).

Usage in a command module::

    from csg_interp.commands.run_args import add_run_arguments, load_run_from_args

    def add_arguments(parser):
        add_run_arguments(parser)
        ...

    def run(args):
        run = load_run_from_args(args)  # a csg_interp.training.Run
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_run_arguments", "load_run_from_args"]


def add_run_arguments(parser: argparse.ArgumentParser, name: str = "run_dir") -> None:
    """Add the positional run directory and ``--checkpoint last|best`` (default ``last``)."""
    parser.add_argument(
        name, metavar="RUN_DIR", help="a run directory written by `csg-interp train`"
    )
    parser.add_argument(
        "--checkpoint", choices=["last", "best"], default="last",
        help="which checkpoint of the run: the last epoch (the paper's choice) or the best "
        "validation STD accuracy",
    )  # fmt: skip


def load_run_from_args(args: argparse.Namespace, device: str = "cpu", name: str = "run_dir") -> Any:
    """``load_run(args.<name>, args.checkpoint, device)``."""
    from csg_interp.training import load_run

    return load_run(getattr(args, name), checkpoint=args.checkpoint, device=device)
