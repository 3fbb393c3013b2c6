"""What the options of ``csg-interp train`` need besides their declarations.

The preset defaults ``--help`` shows (:class:`PresetDefault`), the argparse types of
``--std-stages`` / ``--csg-stages`` (:func:`stages`) and of ``--data-option`` /
``--model-option`` (:func:`key_value`), and the two ways a parsed command line becomes a run's
configuration: :func:`config_from_args` (every option, for a new run) and
:func:`resume_changes` (the options given beside ``--resume``).

This module is imported when the parser is built, so it imports only the standard library at
module level (the configuration class is imported when a function needs it).

Example:
    >>> import argparse
    >>> from csg_interp.commands import train
    >>> parser = argparse.ArgumentParser()
    >>> train.add_arguments(parser)
    >>> config = config_from_args(parser.parse_args(["--out", "runs/csg", "--lr", "0.1"]))
    >>> config.lr, config.gate_lr  # gate_lr stays None: its preset fills it in resolved()
    (0.1, None)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = [
    "PRESET_HELP",
    "RUN_ONLY",
    "PresetDefault",
    "config_from_args",
    "key_value",
    "resume_changes",
    "stages",
]

#: Preset values shown in --help (tests/test_cli_train.py checks them against the presets).
PRESET_HELP: dict[str, tuple[str, str]] = {
    "epochs": ("12", "151"),
    "batch_size": ("128", "32"),
    "lr": ("0.2", "1e-05"),
    "csg_lr": ("0.2", "0.001"),
    "gate_lr": ("0.05", "0.001"),
    "lam": ("0.01", "0.001"),
    "tau": ("0.1", "0.2"),
    "warmup": ("round(epochs/6), 0 for joint", "10"),
    "period": ("3", "3"),
    "csg_from": ("2", "2"),
    "align": ("end", "start"),
    "milestones": ("0.4 0.6 0.8", "0.4 0.6 0.8"),
    "std_stages": ("all", "2"),
    "csg_stages": ("1", "1"),
    "gate_decay": ("False", "True"),
    "optimizer": ("sgd", "adam"),
    "momentum": ("0.9", "0.9"),
    "nesterov": ("True", "False"),
    "weight_decay": ("0.0005", "0.0"),
    "lr_schedule": ("onecycle", "multistep"),
    "lr_warmup": ("0.25", "0.0"),
    "label_smoothing": ("0.0", "0.0"),
}

#: Options that do not describe the run, accepted beside --resume.
RUN_ONLY: frozenset[str] = frozenset({"out", "resume", "threads", "no_progress", "verbose"})

#: Fields of the configuration that no option sets one to one: ``gate`` comes from --no-gate,
#: ``schema`` is the current one for a new run, ``_resolved`` is the config's own state.
_NOT_OPTIONS: frozenset[str] = frozenset({"gate", "schema", "_resolved"})

#: Options given as repeated ``KEY=VALUE`` pairs that the configuration holds as a dict.
_KEY_VALUE_OPTIONS: tuple[str, ...] = ("data_options", "model_options")


class PresetDefault:
    """The default of an option that comes from --preset; ``--help`` prints both values.

    Args:
        name: the option's destination, a key of :data:`PRESET_HELP`.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        scratch, reference = PRESET_HELP[self.name]
        return f"preset: scratch {scratch}, reference {reference}"

    __repr__ = __str__


def stages(value: str) -> int | str:
    """The argparse type of --std-stages / --csg-stages: ``all`` or a positive integer.

    Args:
        value: the text on the command line.

    Returns:
        ``"all"`` or the number.

    Raises:
        argparse.ArgumentTypeError: for anything else (argparse prints it as a usage error).
    """
    if value == "all":
        return value
    message = f"expected 'all' or a positive integer, got {value!r}"
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if number < 1:
        raise argparse.ArgumentTypeError(message)
    return number


def key_value(text: str) -> tuple[str, object]:
    """The argparse type of --data-option / --model-option: ``KEY=VALUE`` → ``(key, value)``.

    Args:
        text: the text on the command line; dashes in the key become underscores.

    Returns:
        The key and the value, read as JSON when it parses (``224``, ``true``), else the text.

    Raises:
        argparse.ArgumentTypeError: without ``=`` or without a key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. image_size=224), got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _key_values_as_dicts(values: dict[str, Any]) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` options (lists of pairs) as the dicts the configuration holds."""
    for name in _KEY_VALUE_OPTIONS:
        if values.get(name) is not None:
            values[name] = dict(values[name])
    return values


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~csg_interp.training.TrainConfig` the parsed options describe (unresolved).

    Every field of the configuration is read from the option of the same name (a field without
    one keeps its default), except those in ``_NOT_OPTIONS`` (``gate`` is ``not --no-gate``);
    an option left at its preset default is ``None`` in the result, so that
    :meth:`~csg_interp.training.TrainConfig.resolved` fills it.

    Args:
        args: the namespace of a parser that ``commands/train.py``'s ``add_arguments`` built.

    Returns:
        The configuration (a ``TrainConfig``).
    """
    import dataclasses

    from csg_interp.training import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)
             if f.name not in _NOT_OPTIONS and hasattr(args, f.name)]
    values = {name: getattr(args, name) for name in names}
    values = {k: (None if isinstance(v, PresetDefault) else v) for k, v in values.items()}
    return TrainConfig(**_key_values_as_dicts(values), gate=not args.no_gate)


def resume_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options given explicitly beside ``--resume``, by destination.

    The command line sets ``args._explicit`` (the destinations it did not leave at their
    defaults); options in :data:`RUN_ONLY` do not describe the run and are left out. Which of
    the others a resumed run accepts is :func:`~csg_interp.training.resume.resume_config`'s
    decision.

    Args:
        args: the parsed namespace.

    Returns:
        ``{destination: value}``, sorted by destination.
    """
    explicit = getattr(args, "_explicit", set()) - RUN_ONLY
    return _key_values_as_dicts({name: getattr(args, name) for name in sorted(explicit)})
