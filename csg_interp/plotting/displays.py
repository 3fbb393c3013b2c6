"""scikit-learn-style Display objects for gates, MI matrices and attribution maps.

Each Display follows the convention of scikit-learn's ``RocCurveDisplay``: ``from_*`` class
methods take arrays, tensors or a :class:`~csg_interp.training.CSGNet`, build the Display and call
:meth:`plot`; ``plot(ax=...)`` draws onto given axes (or a new figure) and stores the artists as
attributes with a trailing underscore (``figure_``, ``ax_``, ``mesh_``, ...). A Display never
trains or evaluates a model beyond what it shows.

The Displays live in one module per figure family; this module gathers them, so every name keeps
its import path ``csg_interp.plotting.displays``:

* :mod:`~csg_interp.plotting.heatmaps` -- :class:`GateHeatmapDisplay`, :class:`MIHeatmapDisplay`
  and :func:`class_sorted_order` (the class-sorted filter order of every heatmap);
* :mod:`~csg_interp.plotting.panels` -- the stacked composites :class:`GateWeightPanelsDisplay`
  (the paper's four panels) and :class:`MIComparisonDisplay` (CSG vs STD);
* :mod:`~csg_interp.plotting.attribution_maps` -- maps on images:
  :class:`AttributionOverlayDisplay`, :class:`ClassFiltersDisplay` and :func:`upsample_map`;
* :mod:`~csg_interp.plotting.atlas` -- :class:`FilterAtlasDisplay`.

Display API after ``sklearn.metrics.RocCurveDisplay``.
"""

from __future__ import annotations

# The private helpers are re-exported too, so code that reached for them here keeps working.
from ._common import _class_names, _image_hwc, _new_axes, _to_numpy
from .atlas import FilterAtlasDisplay, _atlas_image
from .attribution_maps import AttributionOverlayDisplay, ClassFiltersDisplay, _boxes, upsample_map
from .heatmaps import (
    SORT_CAPTION,
    GateHeatmapDisplay,
    MIHeatmapDisplay,
    _block_boundaries,
    _ClassFilterHeatmap,
    _draw_heatmap,
    _filter_ticks,
    _stacked_axes,
    class_sorted_order,
)
from .panels import GateWeightPanelsDisplay, MIComparisonDisplay, _mi_score

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
