"""``train``: train a CSG network (or its STD twin) into a run directory, or resume one.

:func:`train_run` resolves the configuration (a run resumed from its own ``config.json``, with
only the fields that say where it executes changed; otherwise the given configuration with its
preset filled in), trains in this process or, under ``torchrun`` with several processes, with
DistributedDataParallel, and returns a :class:`TrainResult`. The trainer writes the run
directory itself (``config.json``, ``manifest.json``, ``metrics.jsonl``, ``last.pt``,
``best.pt``; ``docs/training.md``); the result reads its headline numbers from the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._result import RunResult

if TYPE_CHECKING:  # pragma: no cover
    from csg_interp.training import Run, TrainConfig

__all__ = ["TrainResult", "train_config", "train_run"]


@dataclass
class TrainResult(RunResult):
    """A trained run: where it is and what it reached.

    Attributes:
        run_dir: the run directory.
        manifest: its ``manifest.json`` (``result`` holds ``test_acc``, ``gate_density``, ...).
        kind: ``CSG`` (with a gate) or ``STD``.
        model: the backbone's name.
        dataset: the data set's name.
        epochs_done: epochs completed.
        primary: ``False`` in the ``torchrun`` processes other than rank 0, which print nothing
            (rank 0 writes the run and reports it).
        run: the trained :class:`~csg_interp.training.Run` (``last`` checkpoint, eval mode);
            ``None`` for a result loaded from ``manifest.json``.
    """

    FILENAME = "manifest.json"

    run_dir: Path
    manifest: dict[str, Any]
    kind: str
    model: str
    dataset: str
    epochs_done: int
    primary: bool = True
    run: Run | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_run(cls, run: Run, config: TrainConfig, primary: bool = True) -> TrainResult:
        """The result of a run :func:`~csg_interp.training.fit` returned.

        Args:
            run: the :class:`~csg_interp.training.Run`.
            config: the :class:`~csg_interp.training.TrainConfig` it trained with.
            primary: whether this process reports the run (see :attr:`primary`).

        Returns:
            The result.
        """
        kind = "CSG" if run.has_gate else "STD"
        return cls(Path(run.run_dir), run.manifest, kind, config.model, config.dataset,
                   run.epochs_done, primary, run)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The manifest (the trainer's file; :meth:`save` does not rewrite it)."""
        return self.manifest

    @classmethod
    def from_dict(cls, payload: dict[str, Any], path: Path) -> TrainResult:
        """The result of the run whose ``manifest.json`` (at ``path``) is ``payload``."""
        config = payload.get("config") or {}
        kind = "CSG" if config.get("gate", True) else "STD"
        return cls(path.parent, payload, kind, str(config.get("model")),
                   str(config.get("dataset")), int(payload.get("epochs_done", 0)))  # fmt: skip

    def save(self, run_dir: str | os.PathLike | None = None) -> Path:
        """The path of ``manifest.json``: the trainer wrote it (atomically, after every epoch).

        Args:
            run_dir: the run directory (default :attr:`run_dir`).

        Returns:
            The manifest's path; nothing is written.
        """
        return self.path_in(self.run_dir if run_dir is None else run_dir)

    @property
    def test_acc(self) -> float:
        """STD-path test accuracy of the last checkpoint (NaN when the manifest has none)."""
        return (self.manifest.get("result") or {}).get("test_acc", float("nan"))

    @property
    def gate_density(self) -> float | None:
        """L1-density of the gate at the end (``None`` for an STD run)."""
        return (self.manifest.get("result") or {}).get("gate_density")

    def summary(self) -> str:
        """One line: kind, model, data set, epochs, test accuracy, gate density, directory."""
        density = self.gate_density
        return (
            f"{self.kind} {self.model} on {self.dataset}: {self.epochs_done} epochs, "
            f"test accuracy {self.test_acc:.4f}"
            + (f", gate L1-density {density:.3f}" if density is not None else "")
            + f"; run directory {self.run_dir}"
        )


def train_config(
    config: TrainConfig, *, resume: bool = False, changes: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The resolved configuration a training run uses.

    Args:
        config: the :class:`~csg_interp.training.TrainConfig` as given (presets not filled in).
        resume: continue the run in ``config.out``; when it has a ``config.json``, that file
            decides and only ``changes`` are applied to it.
        changes: with ``resume``: the options given beside it, checked by
            :func:`~csg_interp.training.resume.resume_config` (only where the run executes may
            change).

    Returns:
        The resolved ``TrainConfig``.

    Raises:
        InvalidParameterError: a value the configuration rejects (a usage error), or a change a
            resumed run cannot take.
        MissingInputError: ``config.json`` of a resumed run cannot be read.
    """
    from csg_interp.errors import InvalidParameterError
    from csg_interp.training.resume import resume_config

    if resume and config.out is not None and (Path(config.out) / "config.json").is_file():
        return resume_config(config.out, **dict(changes or {}))
    try:  # nothing recorded yet: the given configuration defines the run
        return config.resolved()
    except ValueError as error:
        raise InvalidParameterError(str(error)) from error


def train_run(
    config: TrainConfig,
    *,
    resume: bool = False,
    changes: Mapping[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a run (or resume it) into ``config.out``.

    Args:
        config: the :class:`~csg_interp.training.TrainConfig` (see :func:`train_config`).
        resume: continue the run in ``config.out`` exactly where it stopped.
        changes: with ``resume``: the fields to change in its recorded configuration.
        threads: torch CPU threads for this process (``None``: torch's choice).
        progress: progress bars.

    Returns:
        A :class:`TrainResult`; under ``torchrun`` every process returns one, and only rank 0's
        is :attr:`~TrainResult.primary`.

    Raises:
        InvalidParameterError: bad ``threads``, a configuration value, or a change a resumed run
            cannot take.
        TrainingInterrupted: SIGINT/SIGTERM; the last completed epoch is kept.

    Example:
        >>> from csg_interp.training import TrainConfig
        >>> config = TrainConfig(dataset="digits", model="smallcnn", out="runs/digits-csg")
        >>> print(train_run(config).summary())  # doctest: +SKIP
    """
    import torch

    from csg_interp.errors import check_threads
    from csg_interp.training import fit
    from csg_interp.training.distributed import fit_distributed, is_torchrun

    if threads is not None:
        torch.set_num_threads(check_threads(threads))
    config = train_config(config, resume=resume, changes=changes)
    if is_torchrun():  # torchrun with N > 1 processes: DDP; rank 0 writes the run and reports
        run = fit_distributed(config, resume=resume, progress=progress)
        return TrainResult.from_run(run, config, primary=int(os.environ["RANK"]) == 0)
    return TrainResult.from_run(fit(config, resume=resume, progress=progress), config)
