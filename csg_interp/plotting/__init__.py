"""Every figure of the package: scikit-learn-style Display objects and the figure writers.

* :mod:`~csg_interp.plotting.displays` -- ``from_*`` computes, ``plot(ax=...)`` draws, the
  results are ``figure_`` / ``ax_``: :class:`GateHeatmapDisplay`, :class:`MIHeatmapDisplay`,
  :class:`GateWeightPanelsDisplay`, :class:`MIComparisonDisplay`,
  :class:`AttributionOverlayDisplay`, :class:`ClassFiltersDisplay`, :class:`FilterAtlasDisplay`,
  gathered from one module per figure family: :mod:`~csg_interp.plotting.heatmaps`,
  :mod:`~csg_interp.plotting.panels`, :mod:`~csg_interp.plotting.attribution_maps`,
  :mod:`~csg_interp.plotting.atlas`;
* :mod:`~csg_interp.plotting.roc` -- ROC curves with scikit-learn's ``RocCurveDisplay``;
* :mod:`~csg_interp.plotting.overlays` -- localization maps and boxes drawn with torchvision;
* :mod:`~csg_interp.plotting.explanations` -- the figure of one explained image;
* :mod:`~csg_interp.plotting.colors` -- one colour convention (true box lime, predicted red;
  one colour per detector score).

This layer sits above ``applications``, ``attribution``, ``metrics`` and ``training`` and below
the workflows; a Display takes arrays and tensors and never trains or evaluates.
``csg_interp.attribution`` re-exports the Display names lazily, so ``from csg_interp.attribution
import GateHeatmapDisplay`` keeps working.
"""

from .colors import BOX_COLORS, SCORE_COLORS
from .displays import (
    AttributionOverlayDisplay,
    ClassFiltersDisplay,
    FilterAtlasDisplay,
    GateHeatmapDisplay,
    GateWeightPanelsDisplay,
    MIComparisonDisplay,
    MIHeatmapDisplay,
    class_sorted_order,
)
from .explanations import save_explanation_figure
from .overlays import save_box_overlays
from .roc import plot_roc_curves, save_roc_figures

__all__ = [
    "BOX_COLORS",
    "SCORE_COLORS",
    "AttributionOverlayDisplay",
    "ClassFiltersDisplay",
    "FilterAtlasDisplay",
    "GateHeatmapDisplay",
    "GateWeightPanelsDisplay",
    "MIComparisonDisplay",
    "MIHeatmapDisplay",
    "class_sorted_order",
    "plot_roc_curves",
    "save_box_overlays",
    "save_explanation_figure",
    "save_roc_figures",
]
