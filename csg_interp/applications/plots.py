"""The old home of :func:`plot_roc_curves`, kept so existing imports keep working.

Figures live in :mod:`csg_interp.plotting` (ROC curves in :mod:`csg_interp.plotting.roc`); this
compatibility re-export is resolved lazily, so the applications layer does not import the
plotting layer above it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plot_roc_curves"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from csg_interp.plotting import roc

        return getattr(roc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
