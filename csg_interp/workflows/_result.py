"""The shape every run workflow's result shares: a dataclass that saves, loads and summarises.

A workflow is a function ``<name>_run(run_dir, ...) -> <Name>Result``. Its result

* holds what the workflow measured (plain data: numbers, strings, lists, dicts, paths);
* ``save(run_dir)`` writes it atomically into the run directory (the file named by
  ``FILENAME``, relative to the run directory) and returns the path;
* ``load(run_dir)`` reads that file back into the same class;
* ``summary()`` is the plain text a command prints.

A new workflow subclasses :class:`RunResult`, sets ``FILENAME`` and implements ``to_dict`` /
``from_dict`` / ``summary``; see ``docs/architecture.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from csg_interp._utils import write_json_atomic

__all__ = ["RunResult"]

ResultT = TypeVar("ResultT", bound="RunResult")


class RunResult:
    """Base class of the workflow results (subclasses are dataclasses).

    Attributes:
        FILENAME: where :meth:`save` writes, relative to the run directory.
        JSON_INDENT: the indentation of that JSON file.
    """

    FILENAME: ClassVar[str] = ""
    JSON_INDENT: ClassVar[int | None] = 2

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload :meth:`save` writes."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[ResultT], payload: dict[str, Any], path: Path) -> ResultT:
        """Rebuild the result from a payload read from ``path``."""
        raise NotImplementedError

    def summary(self) -> str:
        """The plain-text summary a command prints."""
        raise NotImplementedError

    @classmethod
    def path_in(cls, run_dir: str | os.PathLike) -> Path:
        """Where the result of the run directory ``run_dir`` is stored."""
        return Path(run_dir) / cls.FILENAME

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` atomically to ``run_dir / FILENAME``; returns the path."""
        return write_json_atomic(self.path_in(run_dir), self.to_dict(), indent=self.JSON_INDENT)

    @classmethod
    def load(cls: type[ResultT], run_dir: str | os.PathLike) -> ResultT:
        """Read the result a previous :meth:`save` wrote into ``run_dir``.

        Raises:
            FileNotFoundError: the file does not exist (run the workflow first).
        """
        path = cls.path_in(run_dir)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found; run the workflow ({cls.__name__[:-6].lower()}) first"
            )
        return cls.from_dict(json.loads(path.read_text()), path)
