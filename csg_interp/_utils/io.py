"""Atomic file writes: write a temporary file next to the target, then ``os.replace`` it.

A crash or a failed write leaves the previous file (if any) in place and no partial file; the
temporary file is removed on failure. ``fsync=True`` also flushes the data to disk before the
rename (used for checkpoints). The file gets the permissions a plain :func:`open` would give it
(``0o666`` less the process's umask), not the ``0o600`` of a temporary file, so a shared or served
run directory stays readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_writer", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def _current_umask() -> int:
    """The process's umask: read from ``/proc/self/status`` where Linux offers it (no change to
    process state, so safe beside other threads); elsewhere by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike,
    mode: str = "wb",
    *,
    fsync: bool = False,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """A stream to a temporary file that replaces ``path`` when the block ends without error.

    Args:
        path: the target file; its parent folder is created if needed.
        mode: ``"wb"`` (bytes) or ``"w"`` (text).
        fsync: flush the data to disk before the rename.
        encoding: the text encoding in ``"w"`` mode (default UTF-8).
        newline: passed to :func:`open` in ``"w"`` mode (``""`` for the :mod:`csv` module).

    Yields:
        The open stream. If the block raises, the temporary file is removed, ``path`` is left
        as it was and the exception propagates.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_writer(target, "w") as stream:
        ...     _ = stream.write("done")
        >>> target.read_text()
        'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        options = {"encoding": encoding or "utf-8", "newline": newline} if mode == "w" else {}
        with os.fdopen(handle, mode, **options) as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temp, 0o666 & ~_current_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; the parent folder is created if needed.

    Args:
        path: the target file.
        data: its new content.
        fsync: flush to disk before the rename.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> write_bytes_atomic(folder / "a.bin", b"xy").read_bytes()
        b'xy'
    """
    with atomic_writer(path, "wb", fsync=fsync) as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`).

    Returns:
        The path written.
    """
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(
    path: str | os.PathLike,
    payload: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Any = None,
) -> Path:
    """Write ``payload`` as JSON (plus a final newline) to ``path`` atomically.

    Args:
        path: the target file.
        payload: anything :func:`json.dumps` takes.
        indent, sort_keys, default: passed to :func:`json.dumps`.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> write_json_atomic(folder / "m.json", {"a": 1}, indent=None).read_text()
        '{"a": 1}\\n'
    """
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    return write_text_atomic(path, text)
