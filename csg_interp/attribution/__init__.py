"""Attributions, localization and plots built on the gate and the class-specific feature maps."""

from .csg_attribution import MODES, CSGAttribution, expand_to_input, to_visualization
from .explain import (
    FilterExplanation,
    ImageExplanation,
    explain_images,
    explain_run,
    write_explanations,
)
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
    "FilterExplanation",
    "ImageExplanation",
    "explain_images",
    "explain_run",
    "write_explanations",
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
