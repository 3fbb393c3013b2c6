"""Resume a run with its own configuration: ``config.json`` decides, only a few fields may change.

:func:`resume_config` is what ``csg-interp train --out DIR --resume`` calls: the run's recorded
config, with only the fields of :data:`~csg_interp.training.config.RESUME_MUTABLE_FIELDS` (where
the run executes: device, data folder, workers, ...) replaced. Every other field is part of what
makes the resumed run equal an uninterrupted one, so changing it is refused.

Example:
    >>> from csg_interp.training.resume import resume_config
    >>> config = resume_config("runs/csg", device="cpu")  # doctest: +SKIP
    >>> fit(config, resume=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from csg_interp.errors import InvalidParameterError, MissingInputError

from .config import RESUME_MUTABLE_FIELDS, TrainConfig

__all__ = ["resume_config"]


def resume_config(run_dir: str | os.PathLike, **changes: Any) -> TrainConfig:
    """The resolved config of the run in ``run_dir`` with ``changes`` applied.

    Args:
        run_dir: a run directory written by :func:`~csg_interp.training.fit`.
        **changes: new values of fields in ``RESUME_MUTABLE_FIELDS`` (``out`` is always
            ``run_dir``).

    Returns:
        The :class:`~csg_interp.training.TrainConfig` to pass to ``fit(config, resume=True)``.

    Raises:
        MissingInputError: ``run_dir`` holds no ``config.json``.
        InvalidParameterError: ``changes`` names a field that must stay as recorded.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        raise MissingInputError(
            f"{run_dir} holds no run to resume (no config.json); start it without `resume`, "
            "giving its options"
        )
    fixed = sorted(name for name in changes if name not in RESUME_MUTABLE_FIELDS)
    if fixed:
        allowed = ", ".join(f"`{name}`" for name in sorted(RESUME_MUTABLE_FIELDS) if name != "out")
        raise InvalidParameterError(
            f"resuming {run_dir} uses its own config.json, so {', '.join(f'`{n}`' for n in fixed)} "
            f"cannot be given; drop them (only {allowed} may change), or start a new run in "
            "another `out`"
        )
    values = TrainConfig.load(path).to_dict()
    values.update(changes, out=str(run_dir))
    return TrainConfig.from_dict(values)
