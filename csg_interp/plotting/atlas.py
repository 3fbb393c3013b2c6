"""The filter atlas figure: :class:`FilterAtlasDisplay`, one class's filters (rows) × their top
images (columns), each image outlined where the filter fires.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from csg_interp.training.network import CSGNet

from ._common import _image_hwc

__all__ = ["FilterAtlasDisplay"]


def _atlas_image(images: Any, index: int) -> Any:
    """Image ``index`` of a dict (index → image), an image tensor or a Dataset of pairs."""
    if isinstance(images, dict):
        if index not in images:
            raise ValueError(f"image {index} is missing from images; pass every top image")
        return images[index]
    if isinstance(images, Tensor):
        return images[index]
    item = images[index]
    return item[0] if isinstance(item, (tuple, list)) else item


class FilterAtlasDisplay:
    """One class of the filter atlas: its filters (rows) × their top images (columns).

    Each panel shows one of the filter's top images with the region where the filter's upsampled
    map is at least its threshold t_k outlined (a contour; the saved box when the atlas was loaded
    from ``atlas.json`` and holds no maps). Every title gives the image's data-set index, the
    filter, its gate value ``G[c, k]`` and its MI ``M[c, k]`` for the class.

    Args:
        atlas: a :class:`~csg_interp.attribution.FilterAtlas`.
        images: the data set the atlas was computed on (a Dataset of ``(image, label)``, an
            image tensor (N, C, H, W), or a dict index → image (C, H, W)), in [0, 1].
        cls: the class.
        by: ``"gate"`` or ``"mi"``: which filters serve the class
            (:meth:`~csg_interp.attribution.FilterAtlas.filters_of`), strongest first.
        max_filters: at most this many rows.
        max_images: at most this many columns (default: the atlas's ``top_k``).

    Attributes:
        filters: the filters drawn, in row order.
        plotted: after :meth:`plot`, ``figure_``, ``axes_`` (rows × columns object array) and
            ``outlines_`` (one matplotlib artist per drawn panel).

    Raises:
        ValueError: no filter serves the class (try ``by="mi"`` or a lower ``min_gate`` in
            :func:`~csg_interp.attribution.filter_atlas`).
    """

    def __init__(
        self,
        atlas: Any,
        images: Any,
        cls: int,
        by: str = "gate",
        max_filters: int = 6,
        max_images: int | None = None,
    ) -> None:
        if max_filters < 1:
            raise ValueError(f"max_filters must be at least 1, got {max_filters}")
        self.atlas = atlas
        self.images = images
        self.cls = int(cls)
        self.by = by
        self.filters = atlas.filters_of(self.cls, by)[:max_filters]
        if not self.filters:
            raise ValueError(
                f"no filter serves class {self.cls} by {by}; try by='mi' or a lower min_gate "
                "in filter_atlas"
            )
        self.max_images = atlas.top_k if max_images is None else max(1, int(max_images))

    @property
    def caption(self) -> str:
        rule = (
            f"G[c, k] ≥ {self.atlas.min_gate:g}" if self.by == "gate" else "argmax_c M[c, k] = c"
        )
        return (
            f"Class {self.atlas.class_names[self.cls]}: the filters that serve it ({rule}), "
            "strongest first (rows), and their images with the largest pooled activation, best "
            "first (columns). Outlined: where the filter's upsampled map is at least its "
            "threshold t_k. Titles: data-set index, filter, G[c, k] and M[c, k]."
        )

    @classmethod
    def from_atlas(
        cls,
        atlas: Any,
        images: Any,
        target: int,
        *,
        by: str = "gate",
        max_filters: int = 6,
        max_images: int | None = None,
        axes: Any = None,
        **plot_kwargs: Any,
    ) -> "FilterAtlasDisplay":
        """Draw class ``target`` of a computed atlas (see the class docstring for the args)."""
        display = cls(atlas, images, target, by, max_filters, max_images)
        return display.plot(axes=axes, **plot_kwargs)

    @classmethod
    def from_net(
        cls,
        net: CSGNet,
        dataset: Any,
        thresholds: Tensor | np.ndarray,
        target: int,
        *,
        gate: Tensor | np.ndarray | None = None,
        mi: Tensor | np.ndarray | None = None,
        top_k: int = 6,
        by: str = "gate",
        max_filters: int = 6,
        axes: Any = None,
        **plot_kwargs: Any,
    ) -> "FilterAtlasDisplay":
        """Compute the atlas (:func:`~csg_interp.attribution.filter_atlas`) and draw ``target``.

        Args:
            net: the network.
            dataset: its images (as ``images`` of the class docstring, not a dict).
            thresholds: (K,) t_k, e.g. ``filter_thresholds(activations)`` on validation images.
            target: the class.
            gate, mi: the C×K gate (default ``net.gate``; an STD model needs
                ``gate_from_mi(mi)``) and MI matrix.
            top_k: images per filter.
            by, max_filters: as the class docstring.
        """
        from csg_interp.attribution.atlas import filter_atlas

        atlas = filter_atlas(net, dataset, thresholds, gate=gate, mi=mi, top_k=top_k)
        return cls.from_atlas(atlas, dataset, target, by=by, max_filters=max_filters, axes=axes,
                              **plot_kwargs)  # fmt: skip

    def plot(
        self, axes: Any = None, *, outline_color: str = "red", panel_size: float = 1.6
    ) -> "FilterAtlasDisplay":
        """Draw the grid on ``axes`` (rows × columns, as many as filters × images) or a new one.

        Returns:
            The Display, with ``figure_``, ``axes_`` and ``outlines_``.
        """
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        from csg_interp.attribution.boxes import upsample_maps

        atlas, rows, cols = self.atlas, len(self.filters), self.max_images
        if axes is None:
            _, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows
                                                        + 0.3), squeeze=False)  # fmt: skip
        axes = np.asarray(axes, dtype=object).reshape(-1)
        if axes.size < rows * cols:
            raise ValueError(f"need {rows * cols} axes ({rows} filters × {cols} images), "
                             f"got {axes.size}")  # fmt: skip
        axes = axes[: rows * cols].reshape(rows, cols)
        has_maps = atlas.maps.shape[1] > 0
        self.outlines_ = []
        for row, k in enumerate(self.filters):
            gate = "–" if atlas.gate is None else f"{float(atlas.gate[self.cls, k]):.2f}"
            mi = "–" if atlas.mi is None else f"{float(atlas.mi[self.cls, k]):.3g}"
            for col in range(cols):
                ax = axes[row, col]
                ax.set_xticks([])
                ax.set_yticks([])
                index = int(atlas.indices[k, col]) if col < atlas.top_k else -1
                if index < 0:
                    ax.set_axis_off()
                    continue
                image = _image_hwc(_atlas_image(self.images, index))
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0,
                          interpolation="nearest")  # fmt: skip
                if has_maps:
                    region = upsample_maps(atlas.maps[k, col], atlas.image_size)[0]
                    mask = (region >= float(atlas.thresholds[k])).float().numpy()
                    if mask.any():
                        self.outlines_.append(ax.contour(mask, levels=[0.5],
                                                         colors=outline_color, linewidths=1.2))
                else:
                    x1, y1, x2, y2 = (float(v) for v in atlas.boxes[k, col])
                    patch = Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                      edgecolor=outline_color, linewidth=1.2)  # fmt: skip
                    self.outlines_.append(ax.add_patch(patch))
                ax.set_title(f"#{index} f{k}\nG {gate} · MI {mi}", fontsize=7)
        self.axes_ = axes
        self.figure_ = axes[0, 0].figure
        return self
