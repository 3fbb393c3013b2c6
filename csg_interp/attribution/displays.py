"""The old home of the Display objects, kept so existing imports keep working.

The Displays live in :mod:`csg_interp.plotting.displays`; the names here are resolved lazily
(the one listed exception to "imports point down": attribution re-exports the Display names).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "class_sorted_order",
    "GateHeatmapDisplay",
    "MIHeatmapDisplay",
    "GateWeightPanelsDisplay",
    "MIComparisonDisplay",
    "AttributionOverlayDisplay",
    "ClassFiltersDisplay",
    "FilterAtlasDisplay",
]


def __getattr__(name: str) -> Any:
    from csg_interp.plotting import displays

    try:
        return getattr(displays, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
