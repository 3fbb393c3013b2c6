"""``csg-interp`` command line: a thin shell over the Python API.

Each sub-command lives in ``csg_interp/commands/<name>.py`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
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
    "atlas",
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
    """The ``csg-interp`` parser; ``parser.verb_parsers`` maps each command to its sub-parser."""
    parser = argparse.ArgumentParser(
        prog="csg-interp",
        description="Class-specific gates for CNNs: train, measure, explain, localize, detect.",
    )
    parser.add_argument("--version", action="version", version=f"csg_interp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    verbs: dict[str, argparse.ArgumentParser] = {}
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
        _add_shared_arguments(command)
        command.set_defaults(_run=module.run)
        verbs[name] = command
    parser.verb_parsers = verbs  # type: ignore[attr-defined]
    return parser


def _add_shared_arguments(command: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` (also accepted after the command) and ``--no-progress`` on every verb."""
    options = command._option_string_actions
    if "--verbose" not in options:
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
            help="log debug messages and show the traceback of an error",
        )  # fmt: skip
    if "--no-progress" not in options:
        command.add_argument("--no-progress", action="store_true", help="no progress bars")


def _explicit_dests(verb: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The destinations the command line set explicitly (not left at their defaults)."""
    saved = [(action, action.default, action.required) for action in verb._actions]
    try:
        for action in verb._actions:
            action.default = argparse.SUPPRESS
            action.required = False
        namespace, _ = verb.parse_known_args(list(argv), argparse.Namespace())
    finally:
        for action, default, required in saved:
            action.default, action.required = default, required
    return {name for name in vars(namespace) if not name.startswith("_")}  # not set_defaults


#: Python parameter names whose command-line option has another destination.
_ALIASES: dict[str, str] = {"n_jobs": "jobs", "sanity_images": "sanity", "method": "attack"}


def _flag_of(verb: argparse.ArgumentParser | None, dest: str) -> str | None:
    if verb is None:
        return None
    dests = {action.dest for action in verb._actions}
    if dest not in dests and _ALIASES.get(dest) in dests:
        dest = _ALIASES[dest]
    for action in verb._actions:
        if action.dest == dest:
            if not action.option_strings:
                return str(action.metavar or dest.upper())
            return max(action.option_strings, key=len)
    return None


_PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`]*))?`")
#: A message that opens with a bare parameter name ("workers must be an integer ≥ 0, ...").
_LEADING = re.compile(r"^([a-z][a-z0-9_]*)(?= (?:must|is|are|should) )")


def translate(message: str, verb: argparse.ArgumentParser | None) -> str:
    """Rewrite the backquoted Python names of a library message into the verb's flags.

    ```eps``` → ``--eps``; ```eps=0.03``` → ``--eps 0.03``; a loader option ```download=True```
    → ``--data-option download=true`` where the verb has ``--data-option``; names the verb has
    no flag for keep their Python spelling (without the backquotes).
    """

    def replace(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        flag = _flag_of(verb, name)
        if flag is not None:
            if value is None:
                return flag
            if flag.startswith("-") and value in ("True", "true"):
                return flag
            return f"{flag} {value}" if flag.startswith("-") else value
        option = _flag_of(verb, "data_options")
        if value is not None and option is not None and option.startswith("-"):
            json_value = {"True": "true", "False": "false", "None": "null"}.get(value, value)
            return f"{option} {name}={json_value}"
        return name if value is None else f"{name}={value}"

    message = _PARAMETER.sub(replace, message)
    leading = _LEADING.match(message)
    if leading:
        flag = _flag_of(verb, leading.group(1))
        if flag is not None and flag.startswith("-"):
            message = flag + message[leading.end() :]
    return message


def _unrecognized(verb: argparse.ArgumentParser, extras: list[str]) -> str:
    import difflib

    known = list(verb._option_string_actions)
    hints = []
    for extra in extras:
        flag = extra.split("=", 1)[0]
        if flag.startswith("-"):
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{flag}: did you mean {close[0]}?")
    text = f"unrecognized arguments: {' '.join(extras)}"
    return text + (f" ({'; '.join(hints)})" if hints else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``csg-interp`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Exit status: 0 success; 2 a usage error (argparse's, or a parameter the library rejects);
    1 a run that failed (missing files, a damaged run, a diverged training); 130/143 training
    stopped by SIGINT/SIGTERM (the last completed epoch is kept). Errors print one line
    ``csg-interp <command>: error: ...`` on stderr; ``-v`` shows the traceback instead.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(argv)
    verbs = parser.verb_parsers  # type: ignore[attr-defined]
    verb = verbs.get(args.command) if args.command else None
    if extras:
        (verb or parser).error(_unrecognized(verb or parser, extras))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    index = argv.index(args.command)
    args._explicit = _explicit_dests(verb, argv[index + 1 :])
    from . import progress

    shown = progress.progress_enabled()
    progress.set_progress(shown and not getattr(args, "no_progress", False))
    prefix = f"csg-interp {args.command}: error:"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt as error:  # TrainingInterrupted carries the resume hint
        if args.verbose:
            raise
        from .errors import TrainingInterrupted

        if isinstance(error, TrainingInterrupted):
            hint = getattr(error, "resume_command", None)
            resume = f"; resume with: {hint}" if hint else ""
            print(f"csg-interp {args.command}: {error}{resume}", file=sys.stderr)
            return error.exit_code
        print(f"csg-interp {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.verbose:
            raise
        from .errors import one_line

        code = getattr(error, "exit_code", 1)
        message = one_line(translate(str(error), verb))
        expected = (ValueError, FileNotFoundError, RuntimeError, OSError)
        if not isinstance(error, expected):  # a defect: say what, point at -v
            message = (
                f"unexpected {type(error).__name__}: {message} (rerun with -v for the traceback "
                "and report it)"
            )
        elif not message:
            message = type(error).__name__
        print(f"{prefix} {message}", file=sys.stderr)
        return code if isinstance(code, int) else 1
    finally:
        progress.set_progress(shown)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
