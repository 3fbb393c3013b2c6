"""Attributions, localization and plots built on the gate and the class-specific feature maps."""

from .csg_attribution import MODES, CSGAttribution, expand_to_input, to_visualization
from .atlas import FilterAtlas, filter_atlas
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
from .boxes import (
    BoxResult,
    all_component_boxes,
    boxes_from_maps,
    check_boxes,
    component_boxes,
    paired_box_iou,
    threshold_maps,
    upsample_maps,
)
from .localization import (
    LOCALIZATION_METHODS,
    box_localization,
    cam_mask_iou,
    energy_pointing_game,
    evaluate_maps,
    filter_mask_iou,
    filter_thresholds,
    gt_known_hits,
    localization_maps,
    mask_iou,
    max_box_acc,
)

#: Display names re-exported lazily from :mod:`csg_interp.plotting` (the layer above), so that
#: ``from csg_interp.attribution import GateHeatmapDisplay`` keeps working.
_DISPLAYS = (
    "AttributionOverlayDisplay",
    "ClassFiltersDisplay",
    "FilterAtlasDisplay",
    "GateHeatmapDisplay",
    "GateWeightPanelsDisplay",
    "MIComparisonDisplay",
    "MIHeatmapDisplay",
    "class_sorted_order",
)


def __getattr__(name: str):
    if name in _DISPLAYS:
        from csg_interp import plotting

        return getattr(plotting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BoxResult",
    "all_component_boxes",
    "boxes_from_maps",
    "check_boxes",
    "component_boxes",
    "paired_box_iou",
    "threshold_maps",
    "upsample_maps",
    "LOCALIZATION_METHODS",
    "box_localization",
    "cam_mask_iou",
    "energy_pointing_game",
    "evaluate_maps",
    "filter_mask_iou",
    "filter_thresholds",
    "gt_known_hits",
    "localization_maps",
    "mask_iou",
    "max_box_acc",
    "MODES",
    "CSGAttribution",
    "expand_to_input",
    "to_visualization",
    "FilterAtlas",
    "filter_atlas",
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
    "FilterAtlasDisplay",
    "GateHeatmapDisplay",
    "GateWeightPanelsDisplay",
    "MIComparisonDisplay",
    "MIHeatmapDisplay",
    "class_sorted_order",
]
