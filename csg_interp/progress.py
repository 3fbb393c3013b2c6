"""Progress bars (tqdm) for the steps that take more than a second: feature extraction, the MI
matrix, localization sweeps and attacks; one switch turns them all off.

A bar appears only once its step has run for ``delay`` seconds (tqdm's ``delay``), so quick calls
stay silent. ``csg-interp <command> --no-progress`` calls :func:`set_progress` with ``False``;
Python callers use the same function or the :func:`progress_disabled` context manager.

Example:
    >>> from csg_interp.progress import progress_bar, progress_disabled
    >>> with progress_disabled():
    ...     sum(progress_bar(range(3), desc="adding"))
    3
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["progress_bar", "set_progress", "progress_enabled", "progress_disabled"]

_enabled = True


def set_progress(enabled: bool) -> None:
    """Turn every csg_interp progress bar on or off (training's bars have their own switch)."""
    global _enabled
    _enabled = bool(enabled)


def progress_enabled() -> bool:
    """Whether progress bars are on (see :func:`set_progress`)."""
    return _enabled


@contextlib.contextmanager
def progress_disabled() -> Iterator[None]:
    """No progress bars inside the ``with`` block."""
    previous = _enabled
    set_progress(False)
    try:
        yield
    finally:
        set_progress(previous)


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
    delay: float = 1.0,
) -> Any:
    """A tqdm bar (on stderr, removed when done) unless progress is off.

    Args:
        iterable: what to iterate over (or ``None`` and call ``update`` yourself).
        total: the number of items (default ``len(iterable)`` when it has one).
        desc: what the step is doing.
        unit: the unit counted.
        enabled: force the bar on or off (default: :func:`progress_enabled`).
        delay: seconds before the bar first appears.

    Returns:
        A ``tqdm`` object (iterable; ``update(n)``, ``close()``).
    """
    from tqdm.auto import tqdm

    show = progress_enabled() if enabled is None else enabled
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
        disable=not show, delay=delay,
    )  # fmt: skip
