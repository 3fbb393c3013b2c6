"""Attributions, localization and plots built on the gate and the class-specific feature maps."""

from .csg_attribution import MODES, CSGAttribution, expand_to_input, to_visualization
from .sanity import (
    DeletionInsertion,
    SanityResult,
    cascade_units,
    deletion_insertion,
    sanity_check,
)
from .displays import (
    AttributionOverlayDisplay,
    ClassFiltersDisplay,
    GateHeatmapDisplay,
    GateWeightPanelsDisplay,
    MIComparisonDisplay,
    MIHeatmapDisplay,
    class_sorted_order,
)

__all__ = [
    "MODES",
    "CSGAttribution",
    "expand_to_input",
    "to_visualization",
    "DeletionInsertion",
    "SanityResult",
    "cascade_units",
    "deletion_insertion",
    "sanity_check",
    "AttributionOverlayDisplay",
    "ClassFiltersDisplay",
    "GateHeatmapDisplay",
    "GateWeightPanelsDisplay",
    "MIComparisonDisplay",
    "MIHeatmapDisplay",
    "class_sorted_order",
]
