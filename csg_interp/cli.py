"""``csg-interp`` command line: a thin shell over the Python API.

Each sub-command lives in ``csg_interp/commands/<name>.py`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

# Order = order in --help.
COMMANDS: tuple[str, ...] = (
    "train",
    "evaluate",
    "compare",
    "filters",
    "explain",
    "localize",
    "detect",
    "report",
    "export",
    "demo",
)


def _load(name: str):
    try:
        return importlib.import_module(f"csg_interp.commands.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"csg_interp.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csg-interp",
        description="Class-specific gates for CNNs: train, measure, explain, localize, detect.",
    )
    parser.add_argument("--version", action="version", version=f"csg_interp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        command = sub.add_parser(
            name,
            help=module.HELP.replace("%", "%%"),  # argparse %-formats help strings
            description=module.__doc__,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # Expected failures (bad input, missing data/checkpoint): one clear line, no traceback.
        if args.verbose:
            raise
        print(f"csg-interp {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
