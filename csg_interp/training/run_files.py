"""Writing a run directory: the checks before a run starts and the files the trainer keeps.

The trainer (:class:`~csg_interp.training.Trainer`, rank 0 only) writes, through the atomic
writers of :mod:`csg_interp._utils`:

* ``config.json`` -- the resolved config, once, when the run starts or resumes;
* ``metrics.jsonl`` -- one JSON row per finished epoch (rewritten whole at the start, then
  appended to);
* ``manifest.json`` -- status, config, versions, git revision, data, device, model and schedule
  facts, the best epoch and the final result (:func:`build_manifest`), rewritten after every
  epoch;
* ``best.pt`` / ``last.pt`` -- the checkpoints of :func:`save_epoch_checkpoints`.

Reading a run back is :mod:`csg_interp.training.runs` (:func:`~csg_interp.training.load_run`).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import torch

from csg_interp._utils import write_json_atomic, write_text_atomic
from csg_interp.errors import OutputExistsError

from .checkpoint import save_checkpoint
from .config import RESUME_MUTABLE_FIELDS, TrainConfig
from .network import CSGNet
from .provenance import git_revision, package_versions

__all__ = [
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "append_metrics",
    "build_manifest",
    "check_run_directory",
    "save_epoch_checkpoints",
    "write_config",
    "write_manifest",
    "write_metrics",
]

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"

#: The JSON format of ``config.json`` and ``manifest.json``.
_JSON_OPTIONS: dict[str, Any] = {"indent": 2, "sort_keys": True, "default": str}


def check_run_directory(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Refuse a run directory that a new run (or this resume) must not write into.

    Args:
        run_dir: the run directory (``config.out``).
        config: the run's resolved config.
        resume: whether the run continues the one in ``run_dir``.

    Raises:
        OutputExistsError: ``run_dir`` is a file, or holds a run and ``resume`` is false.
        ValueError: on resume, ``config`` differs from the saved ``config.json`` in a field that
            a resume may not change.
    """
    config_path, last = run_dir / CONFIG_FILE, run_dir / "last.pt"
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(
            f"`out` {run_dir} is a file, not a run directory; choose another `out`"
        )
    if not resume and (config_path.exists() or last.exists()):
        raise OutputExistsError(
            f"{run_dir} already holds a run; pass `resume=True` to continue it, "
            "or choose another `out`"
        )
    if resume and config_path.exists():
        saved = TrainConfig.load(config_path)
        changed = saved.differences(config, RESUME_MUTABLE_FIELDS)
        if changed:
            details = ", ".join(
                f"{k}: {getattr(saved, k)!r} → {getattr(config, k)!r}" for k in changed
            )
            raise ValueError(
                f"cannot resume {run_dir} with a different configuration ({details}); "
                "resume with the same options or start a new run directory"
            )


def write_config(run_dir: Path, config: TrainConfig) -> Path:
    """Write ``config.json`` (the config's ``to_dict()``, sorted keys) atomically.

    Args:
        run_dir: the run directory.
        config: the resolved config.

    Returns:
        The path written.
    """
    return write_json_atomic(run_dir / CONFIG_FILE, config.to_dict(), **_JSON_OPTIONS)


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> Path:
    """Rewrite ``metrics.jsonl`` atomically: one JSON row per epoch of ``history``.

    Args:
        run_dir: the run directory.
        history: the epochs' metrics rows, in order (may be empty).

    Returns:
        The path written.
    """
    rows = "".join(json.dumps(row) + "\n" for row in history)
    return write_text_atomic(run_dir / METRICS_FILE, rows)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """Append one epoch's metrics row to ``metrics.jsonl``.

    Args:
        run_dir: the run directory.
        row: the epoch's metrics (JSON-serialisable).
    """
    with open(run_dir / METRICS_FILE, "a") as stream:
        stream.write(json.dumps(row) + "\n")


def build_manifest(
    *,
    status: str,
    epochs_done: int,
    config: TrainConfig,
    meta: dict[str, Any],
    augment: Any,
    bundle: Any,
    device: torch.device,
    world_size: int,
    net: CSGNet,
    schedule: Any,
    best: dict[str, Any],
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``manifest.json`` at this point of a run.

    Args:
        status: ``running``, ``interrupted``, ``diverged`` or ``finished``.
        epochs_done: the epochs finished (and saved).
        config: the resolved config.
        meta: :func:`~csg_interp.training.runs.net_meta` of the data.
        augment: the augmentation the run uses.
        bundle: the data (``train`` / ``val`` / ``test`` and ``info``).
        device: the training device.
        world_size: the number of processes.
        net: the network (its gate shape and parameter count are recorded).
        schedule: the run's :class:`~csg_interp.training.EpochSchedule`.
        best: ``{"epoch": ..., "val_acc": ...}`` of the best epoch so far.
        result: the final result (test accuracy, ...) once finished, else ``None``.

    Returns:
        The manifest as a JSON-serialisable dict (with the current UTC time, versions and git
        revision).
    """
    return {
        "status": status,
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "epochs_done": epochs_done,
        "config": config.to_dict(),
        "versions": package_versions(),
        "git": git_revision(),
        "data": {
            **meta,
            "augment": augment,
            "sizes": {"train": len(bundle.train), "val": len(bundle.val), "test": len(bundle.test)},
            "info": bundle.info,
        },
        "device": str(device),
        "threads": torch.get_num_threads(),
        "world_size": world_size,
        "model": {
            "gate_shape": list(net.gate.weight.shape) if net.gate is not None else None,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "schedule": {
            "kinds": schedule.kinds,
            "csg_epochs": len(schedule.csg_epochs),
            "milestone_steps": schedule.milestone_steps,
            "lr_schedule": config.lr_schedule,
            "steps_per_epoch": schedule.steps_per_epoch,
        },
        "best": dict(best),
        "result": result,
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (sorted keys) atomically.

    Args:
        run_dir: the run directory.
        manifest: from :func:`build_manifest`.

    Returns:
        The path written.
    """
    return write_json_atomic(run_dir / MANIFEST_FILE, manifest, **_JSON_OPTIONS)


def save_epoch_checkpoints(run_dir: Path, state: dict[str, Any], improved: bool) -> None:
    """Save an epoch's state as ``last.pt`` and, when it improved, as ``best.pt`` first.

    ``best.pt`` is written before ``last.pt``: a crash in between leaves ``last.pt`` one epoch
    behind ``best.pt``, never ahead of it.

    Args:
        run_dir: the run directory.
        state: the trainer's ``state_dict()``.
        improved: whether the epoch has the best validation accuracy so far.
    """
    if improved:
        save_checkpoint(state, run_dir / "best.pt")
    save_checkpoint(state, run_dir / "last.pt")
