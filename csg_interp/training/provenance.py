"""Where a run came from: the package versions and the git revision recorded in its manifest.

Both are read when the trainer writes ``manifest.json`` (:mod:`csg_interp.training.run_files`);
neither fails: a missing ``git`` or a checkout that is not a repository gives ``None`` values.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["git_revision", "package_versions"]


def git_revision() -> dict[str, Any]:
    """The git revision of the package's checkout and whether tracked files differ from it.

    Returns:
        ``{"revision": sha or None, "dirty": bool or None}``; both ``None`` when ``git`` is
        missing, times out or the package is not inside a repository.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        revision = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )
        if revision.returncode != 0:
            return {"revision": None, "dirty": None}
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return {"revision": revision.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def package_versions() -> dict[str, str]:
    """The versions of Python, this package, torch, numpy and (when installed) torchvision.

    Returns:
        ``{"python": ..., "csg_interp": ..., "torch": ..., "numpy": ..., "torchvision": ...}``.
    """
    import csg_interp

    versions = {
        "python": platform.python_version(),
        "csg_interp": csg_interp.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    try:
        import torchvision

        versions["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return versions
