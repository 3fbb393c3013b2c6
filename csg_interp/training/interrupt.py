"""Stop training cleanly on SIGINT (Ctrl-C) or SIGTERM.

:class:`InterruptGuard` is the context manager :meth:`Trainer.fit` runs its epoch loop in. A
signal raises :class:`~csg_interp.errors.TrainingInterrupted` at once, which discards the epoch
in progress (its partial updates are never saved), except inside :meth:`InterruptGuard.deferred`
blocks -- the end-of-epoch bookkeeping (metrics row, ``best.pt``/``last.pt``, manifest) -- where
it waits until the block is done, so the run directory always describes one completed epoch.
The trainer then writes ``manifest.json`` with ``status: interrupted`` and the number of
completed epochs and re-raises; ``csg-interp train`` prints the resume command and exits with
``128 + signal`` (130 for SIGINT, 143 for SIGTERM).

Under ``torchrun`` the launcher forwards the signal to every process; each one stops the same
way and only rank 0 writes the run directory.

Handlers are installed only in the main thread (Python's rule); elsewhere the guard does nothing
and Ctrl-C keeps its default behaviour.

Example:
    >>> import os, signal
    >>> from csg_interp.errors import TrainingInterrupted
    >>> guard = InterruptGuard()
    >>> try:
    ...     with guard:
    ...         with guard.deferred():
    ...             os.kill(os.getpid(), signal.SIGTERM)   # held until the block ends
    ...             saved = True
    ... except TrainingInterrupted as stop:
    ...     print(saved, stop.signum == signal.SIGTERM)
    True True
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from csg_interp.errors import TrainingInterrupted

__all__ = ["InterruptGuard"]

_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Turn SIGINT/SIGTERM into :class:`~csg_interp.errors.TrainingInterrupted` at safe points.

    Attributes:
        received: the first signal received inside the guard, or ``None``.
    """

    def __init__(self, signals: tuple[int, ...] = _SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._depth = 0
        self._quiet = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._quiet:
            return
        if self.received is None:
            self.received = signum
        if self._depth == 0:
            raise TrainingInterrupted(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a signal does not interrupt; a signal received inside raises at its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.received is not None and not self._quiet:
            raise TrainingInterrupted(self.received)

    def stop_listening(self) -> None:
        """Ignore further signals (while the interrupted state is being written)."""
        self._quiet = True
