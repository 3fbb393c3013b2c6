"""One colour convention for every figure of the package.

* Boxes: the **true** (ground-truth) box is lime, a **predicted** box red — in the localization
  overlays, the report and :class:`~csg_interp.plotting.displays.AttributionOverlayDisplay`'s
  ``box_color`` / ``true_box_color`` when given these names.
* Detector scores: one matplotlib ``tab10`` colour per score name in every ROC panel.
"""

from __future__ import annotations

__all__ = ["BOX_COLORS", "SCORE_COLORS"]

#: Box colours: ``"true"`` (ground truth) and ``"predicted"``.
BOX_COLORS: dict[str, str] = {"true": "lime", "predicted": "red"}

#: One colour per detector score in every ROC panel (matplotlib's tab10).
SCORE_COLORS: dict[str, str] = {
    "gate": "tab:blue",
    "mi-gate": "tab:orange",
    "max-softmax": "tab:green",
    "mahalanobis": "tab:red",
    "gate-logistic": "tab:purple",
    "mi-gate-logistic": "tab:brown",
}
