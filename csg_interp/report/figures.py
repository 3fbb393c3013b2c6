"""The report's own figures, drawn from what the analyses saved (arrays and PNG files).

* :func:`plot_explanation_grid`: one row per explained image -- the image, the class map over
  it, the filters that fired with their gate values -- from ``explain``'s ``.npz`` files.
* :func:`plot_overlay_rows`: ``localize``'s overlay strips, one labelled row per (model, method),
  with a legend for the box colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_explanation_grid", "plot_overlay_rows"]


def _as_picture(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) in [0, 1] → something ``imshow`` draws, and its colour map."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
    return np.clip(image, 0.0, 1.0), ("gray" if image.ndim == 2 else None)


def plot_explanation_grid(
    explanations: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]],
    max_filters: int = 6,
) -> Any:
    """A grid of explanations: per row the image, its class map, and the top fired filters.

    Args:
        explanations: ``(entry, arrays)`` pairs as :class:`~csg_interp.report.data.RunData`
            holds them: ``entry`` from ``index.json`` (``source``, ``label_name``,
            ``predicted_name``, ``probability``, ``filters`` with ``filter``/``gate``) and the
            ``.npz`` arrays (``image`` (C, H, W), ``class_map_upsampled`` (H, W),
            ``filter_maps`` (F, h, w)).
        max_filters: filter columns at most.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: for an empty list.

    Example:
        >>> entry = {"source": "test[0]", "label_name": "3", "predicted_name": "3",
        ...          "probability": 0.9, "filters": [{"filter": 4, "gate": 1.0}]}
        >>> arrays = {"image": np.zeros((1, 8, 8)), "class_map_upsampled": np.ones((8, 8)),
        ...           "filter_maps": np.ones((1, 2, 2))}
        >>> figure = plot_explanation_grid([(entry, arrays)])
        >>> [ax.get_title() for ax in figure.axes if ax.get_visible()]
        ['test[0]\\nlabel 3', 'predicted 3\\np = 0.90', 'filter 4\\nG = 1.00']
    """
    import matplotlib.pyplot as plt

    if not explanations:
        raise ValueError("no explanation to draw; run csg-interp explain first")
    columns = 2 + min(max_filters, max((len(e.get("filters") or []) for e, _ in explanations),
                                       default=0))
    rows = len(explanations)
    figure, axes = plt.subplots(rows, columns, figsize=(1.45 * columns, 1.75 * rows),
                                squeeze=False, layout="constrained")
    for row, (entry, arrays) in enumerate(explanations):
        picture, cmap = _as_picture(arrays["image"])
        grey = picture if picture.ndim == 2 else picture.mean(axis=-1)
        axes[row, 0].imshow(picture, cmap=cmap, vmin=0, vmax=1)
        axes[row, 0].set_title(f"{entry.get('source', '')}\nlabel {entry.get('label_name', '?')}",
                               fontsize=8)
        axes[row, 1].imshow(grey, cmap="gray", vmin=0, vmax=1)
        if "class_map_upsampled" in arrays:
            axes[row, 1].imshow(arrays["class_map_upsampled"], cmap="jet", alpha=0.5)
        probability = entry.get("probability")
        share = f"\np = {probability:.2f}" if isinstance(probability, float) else ""
        axes[row, 1].set_title(f"predicted {entry.get('predicted_name', '?')}{share}", fontsize=8)
        filters = list(entry.get("filters") or [])[: columns - 2]
        maps = arrays.get("filter_maps")
        for column, info in enumerate(filters, start=2):
            if maps is not None and column - 2 < len(maps):
                axes[row, column].imshow(maps[column - 2], cmap="viridis")
            axes[row, column].set_title(
                f"filter {info.get('filter')}\nG = {float(info.get('gate', 0.0)):.2f}", fontsize=8
            )
        for column in range(columns):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if column >= 2 + len(filters):
                axes[row, column].set_visible(False)
    return figure


def plot_overlay_rows(
    overlays: Mapping[str, Path], legend: Sequence[tuple[str, str]] = (
        ("lime", "true box"), ("red", "predicted box")),
    width: float = 10.0,
) -> Any:
    """Overlay strips (PNG files) stacked with a label per row and one legend.

    Args:
        overlays: row label → PNG file (e.g. ``"CSG model\\nCSG map"`` → ``overlays_csg_csg.png``).
        legend: (colour, meaning) pairs.
        width: figure width in inches.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: for no overlay.
    """
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not overlays:
        raise ValueError("no overlay to draw; run csg-interp localize first")
    pictures = {label: mpimg.imread(path) for label, path in overlays.items()}
    heights = [p.shape[0] / p.shape[1] * width * 0.8 for p in pictures.values()]
    figure, axes = plt.subplots(len(pictures), 1, figsize=(width, sum(heights) + 0.6),
                                squeeze=False, layout="constrained",
                                gridspec_kw={"height_ratios": heights})
    for ax, (label, picture) in zip(axes[:, 0], pictures.items()):
        ax.imshow(picture)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    figure.legend(handles=[Patch(facecolor="none", edgecolor=c, linewidth=2, label=t)
                           for c, t in legend],
                  loc="outside upper center", ncol=len(legend), fontsize=9, frameon=False)
    return figure
