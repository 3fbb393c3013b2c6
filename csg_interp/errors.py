"""Errors of csg_interp and the small input checks that raise them.

Every expected failure raises a subclass of :class:`CSGInterpError` whose message says what was
wrong and what to do, in Python terms: a parameter is set between single backquotes, as in
``"`eps` [0.0] holds 0"`` or ``"pass `data_root=DIR`"``, and a data-set loader option the same
way (``"`download=True`"``). The command line (``csg_interp.cli``) rewrites those names into the
flags of the command that failed (``--eps``, ``--data-root DIR``, ``--data-option
download=true``; a name the command has no flag for keeps its Python spelling) and prints the
message on one line.

The classes also derive from the built-in exception a caller would expect (``ValueError``,
``FileNotFoundError``, ``FileExistsError``, ``KeyboardInterrupt``), so ``except ValueError``
keeps working.

This module is the lowest layer of the package: it imports nothing from csg_interp.

Example:
    >>> from csg_interp.errors import check_positive_int
    >>> check_positive_int(0, "threads")
    Traceback (most recent call last):
    ...
    csg_interp.errors.InvalidParameterError: `threads` must be a positive integer, got 0
"""

from __future__ import annotations

import math
import os
import signal
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "CSGInterpError",
    "InvalidParameterError",
    "MissingInputError",
    "OutputExistsError",
    "TrainingInterrupted",
    "InputRangeWarning",
    "check_positive_int",
    "check_threads",
    "check_output_parent",
    "check_pixel_values",
    "one_line",
]


class CSGInterpError(Exception):
    """Base class of csg_interp's expected failures.

    Attributes:
        exit_code: the command line's exit status for this error (1: the run failed).
    """

    exit_code = 1


class InvalidParameterError(CSGInterpError, ValueError):
    """A parameter has a value the function cannot use (the command line exits with 2)."""

    exit_code = 2


class MissingInputError(CSGInterpError, FileNotFoundError):
    """A file or directory the call reads does not exist or is of the wrong kind."""


class OutputExistsError(CSGInterpError, FileExistsError, ValueError):
    """The output path is taken (by a file where a directory is needed, or by another run).

    Also a ``ValueError``: callers that caught the earlier ``ValueError`` keep working.
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after the last completed epoch was saved.

    A ``KeyboardInterrupt`` (so ``except Exception`` never swallows it).

    Attributes:
        signum: the signal received (``signal.SIGINT`` or ``signal.SIGTERM``).
        run_dir: the run directory (its ``last.pt`` is the last completed epoch, if any).
        epochs_done: completed epochs kept in the run directory.
        exit_code: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), the shell's convention.
    """

    def __init__(self, signum: int, run_dir: Any = None, epochs_done: int = 0) -> None:
        self.signum = int(signum)
        self.run_dir = run_dir
        self.epochs_done = int(epochs_done)
        super().__init__(self._message())

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:  # pragma: no cover - not a known signal number
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def _message(self) -> str:
        if self.run_dir is None:
            return f"interrupted by {self.signal_name}"
        kept = (
            f"{self.epochs_done} completed epoch(s) kept in {self.run_dir}"
            if self.epochs_done
            else f"no epoch had completed, nothing kept in {self.run_dir}"
        )
        return f"interrupted by {self.signal_name}; {kept}"


class InputRangeWarning(UserWarning):
    """Images outside [0, 1] pixel units (e.g. 0–255), the range the library expects."""


def one_line(text: object, limit: int = 600) -> str:
    """``text`` on one line (whitespace collapsed), shortened to ``limit`` characters."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``minimum``.

    Args:
        value: the value to check.
        name: the parameter's name, for the message.
        minimum: the smallest accepted value.

    Raises:
        InvalidParameterError: not an integer, or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise InvalidParameterError(f"`{name}` must be {what}, got {value!r}")
    return value


def check_threads(threads: Any, name: str = "threads") -> int:
    """A torch CPU thread count: an integer between 1 and 4 × the CPU count.

    Raises:
        InvalidParameterError: naming ``name`` and the machine's CPU count.
    """
    cpus = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 4 * cpus:
        raise InvalidParameterError(
            f"`{name}` must be an integer from 1 to {4 * cpus} (this machine has {cpus} CPU "
            f"core(s)), got {threads!r}"
        )
    return threads


def check_output_parent(path: str | os.PathLike, name: str = "out", parents: bool = False) -> Path:
    """Check that the folder an output goes into exists (or create it when ``parents``).

    Args:
        path: the file or directory to be written.
        name: the parameter that named it, for the message.
        parents: create missing parent folders instead of failing.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InvalidParameterError: the parent folder is missing (and ``parents`` is false) or is a
            file.
    """
    path = Path(path)
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InvalidParameterError(f"`{name}` {path}: {parent} is a file, not a folder")
    if not parent.exists():
        if not parents:
            raise InvalidParameterError(
                f"`{name}` {path}: the folder {parent} does not exist; create it first or pass "
                "`parents=True` to create it"
            )
        parent.mkdir(parents=True, exist_ok=True)
    return path


_warned_range: set[str] = set()


def check_pixel_values(images: Any, name: str = "inputs", warn_range: bool = True) -> None:
    """Images must be finite; outside [0, 1] they are accepted with one warning per ``name``.

    Args:
        images: a floating-point tensor (N, C, H, W); other dtypes are only checked for range.
        name: the parameter that carried them, for the message.
        warn_range: warn (once per ``name`` per process) when values lie outside [0, 1].

    Raises:
        InvalidParameterError: the images hold NaN or infinite values.

    Warns:
        InputRangeWarning: values outside [0, 1] (e.g. 0–255 pixels): the networks normalise
            internally and the attacks clamp to [0, 1], so such inputs give meaningless maps.
    """
    import torch

    if not isinstance(images, torch.Tensor) or images.numel() == 0:
        return
    if images.is_floating_point():
        finite = torch.isfinite(images)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise InvalidParameterError(
                f"`{name}` holds {bad} NaN or infinite value(s) out of {images.numel()}; "
                "pass finite images in [0, 1] pixel units"
            )
    if warn_range and name not in _warned_range:
        low, high = float(images.min()), float(images.max())
        if low < -1e-6 or high > 1.0 + 1e-6 or not math.isfinite(low + high):
            _warned_range.add(name)
            warnings.warn(
                f"`{name}` ranges over [{low:g}, {high:g}], outside [0, 1]: csg_interp's networks "
                "and attacks expect pixels in [0, 1] (divide 0-255 images by 255); this warning "
                "is shown once",
                InputRangeWarning,
                stacklevel=3,
            )
