"""Safe checkpoints: tensors and plain containers only, written atomically, read with
``torch.load(..., weights_only=True)``.

* Writing goes to a temporary file in the same folder, is flushed to disk, then renamed over the
  target with :func:`os.replace` (atomic on POSIX): a crash or a failed write leaves the previous
  file intact.
* Before writing, the state is checked to hold only tensors, numbers, strings, ``None`` and
  dicts/lists/tuples of them, so every checkpoint loads with ``weights_only=True``. Random-number
  generator states are converted to tensors and lists (:func:`capture_rng_state`).
* Reading uses ``weights_only=True`` only: a file carrying pickled code is refused without
  running it (PyTorch's restricted unpickler), a truncated file or a foreign file gets a
  :class:`CheckpointError` that says what to do.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from csg_interp._utils.io import atomic_writer

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "CheckpointWriteError",
    "save_checkpoint",
    "load_checkpoint",
    "safe_torch_load",
    "check_plain_state",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = "csg_interp.checkpoint"
CHECKPOINT_VERSION = 1

logger = logging.getLogger(__name__)

_PRIMITIVES = (bool, int, float, str, type(None))


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, foreign, or carrying code."""


class CheckpointWriteError(RuntimeError):
    """Writing a checkpoint failed; the previous file at that path is untouched."""


def check_plain_state(obj: Any, where: str = "state") -> None:
    """Raise ``TypeError`` unless ``obj`` holds only tensors, primitives and containers of them.

    Args:
        obj: the object to check.
        where: a name for the error message (the path inside the state).
    """
    if isinstance(obj, (Tensor, *_PRIMITIVES)):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} of type {type(key).__name__} is not str/int")
            check_plain_state(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            check_plain_state(value, f"{where}[{index}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__name__}; checkpoints hold only tensors, "
        "numbers, strings, None and dict/list/tuple containers"
    )


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        state: tensors and plain containers only (checked with :func:`check_plain_state`).
        path: the target file.

    Returns:
        The path written.

    Raises:
        TypeError: if ``state`` holds another kind of object.
        CheckpointWriteError: if writing fails; the previous file at ``path`` is kept.
    """
    path = Path(path)
    check_plain_state(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(path, "wb", fsync=True) as stream:
            torch.save(state, stream)
    except BaseException as error:
        if isinstance(error, (OSError, RuntimeError, pickle.PicklingError)):
            raise CheckpointWriteError(
                f"could not write checkpoint {path} ({error}); the previous {path.name}, if any, "
                "is intact. Check the free disk space and permissions and run it again (a "
                "training run continues from its last epoch with `resume=True`)."
            ) from error
        raise
    return path


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file carries objects other than tensors and plain containers
            (refused, never executed), or is truncated/corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # a reference to a Python callable or class
            raise CheckpointError(
                f"{path} was refused: it references Python code or classes "
                f"({_named_global(error)}), not only tensors and plain containers, and "
                "csg_interp loads checkpoints with weights_only=True only. Use a checkpoint "
                "written by csg-interp train, or a plain state dict."
            ) from error
        raise CheckpointError(
            f"{path} is corrupt or truncated, or not a tensors-only file, and cannot be read "
            "(weights_only=True). Use best.pt, or retrain."
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path} is corrupt or truncated and cannot be read ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Use best.pt, or retrain."
        ) from error


def _named_global(error: Exception) -> str:
    for line in str(error).splitlines():
        if "global" in line.lower():
            return line.strip()[:160]
    return "unknown global"


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Args:
        path: the ``.pt`` file.
        map_location: where tensors go (default CPU).

    Returns:
        The state dict (``format``, ``version``, ``epochs_done``, ``model``, ...).

    Raises:
        FileNotFoundError: if the file is missing.
        CheckpointError: corrupt, refused (code payload) or foreign (not a csg_interp checkpoint).
    """
    state = safe_torch_load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        hint = ""
        if isinstance(state, dict) and state and all(isinstance(v, Tensor) for v in state.values()):
            hint = " It looks like a bare state dict: start a run from it with --weights."
        raise CheckpointError(f"{path} is not a csg_interp training checkpoint.{hint}")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')!r}; this csg_interp reads "
            f"version {CHECKPOINT_VERSION}"
        )
    return state


# ----------------------------------------------------------------------- RNG
def capture_rng_state() -> dict[str, Any]:
    """The torch, CUDA, numpy and Python RNG states as tensors and plain containers."""
    algorithm, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "algorithm": str(algorithm),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "cuda": [],
    }  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["algorithm"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
