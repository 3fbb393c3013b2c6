"""The figure of one explained image (what ``csg-interp explain`` writes next to each ``.npz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = ["save_explanation_figure"]


def save_explanation_figure(
    explanation: Any, image: Tensor, names: list[str] | None, path: Path
) -> Path:
    """One image's explanation as a PNG: the class map over the image, then the fired filters.

    Args:
        explanation: an :class:`~csg_interp.attribution.ImageExplanation`.
        image: the image (C, H, W) in [0, 1].
        names: the class names (``None``: class indices).
        path: the PNG to write (dpi 80).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .displays import AttributionOverlayDisplay, ClassFiltersDisplay

    n = len(explanation.filters)
    cols = min(n + 2, 6)
    rows = -(-(n + 2) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.3 * rows), squeeze=False)
    axes = list(grid.ravel())
    cls = explanation.predicted
    label = names[cls] if names else str(cls)
    AttributionOverlayDisplay(
        image.cpu(), explanation.class_map, title=f"{label} ({explanation.probability:.2f})"
    ).plot(ax=axes[0])
    if n:
        ClassFiltersDisplay(
            image.cpu(), explanation.filter_maps, [f.filter for f in explanation.filters],
            [f.gate for f in explanation.filters], label,
        ).plot(axes=axes[1 : n + 2])  # fmt: skip
    for ax in axes[(n + 2 if n else 1) :]:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
