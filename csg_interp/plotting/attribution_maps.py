"""Attribution maps on images: :class:`AttributionOverlayDisplay` (one map, optional boxes) and
:class:`ClassFiltersDisplay` (the filters of one class, one overlay each), and
:func:`upsample_map`, which brings a layer-resolution map to the image size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from csg_interp._utils import eval_mode
from csg_interp.training.network import CSGNet, check_images

from ._common import _class_names, _image_hwc, _new_axes, _to_numpy

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["upsample_map", "AttributionOverlayDisplay", "ClassFiltersDisplay"]


def upsample_map(attribution: Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly upsample a layer-resolution map (h, w) or (1, h, w) to ``size`` = (H, W).

    Uses Captum's ``LayerAttribution.interpolate`` (bilinear, ``align_corners=False``).

    Returns:
        A (H, W) float64 array.
    """
    from captum.attr import LayerAttribution

    array = _to_numpy(attribution, "attribution", (2, 3))
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise ValueError(
                f"attribution must be one map (h, w) or (1, h, w), got shape {array.shape}; "
                "sum over filters first or use ClassFiltersDisplay for per-filter maps"
            )
        array = array[0]
    tensor = torch.as_tensor(array)[None, None]
    return LayerAttribution.interpolate(tensor, tuple(size), "bilinear")[0, 0].numpy()


def _boxes(boxes: Tensor | np.ndarray | None, name: str) -> np.ndarray:
    """(n, 4) xyxy boxes as float64; ``None`` or an empty input gives (0, 4)."""
    if boxes is None:
        return np.zeros((0, 4))
    if isinstance(boxes, Tensor):
        boxes = boxes.detach().cpu().numpy()
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(
            f"{name} must be (n, 4) boxes in xyxy pixel format, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values")
    if (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        raise ValueError(
            f"{name} must be in xyxy format (x1 <= x2, y1 <= y2); convert xywh/cxcywh boxes with "
            "torchvision.ops.box_convert"
        )
    return array


class AttributionOverlayDisplay:
    """An image with an attribution map on top and optional predicted / true boxes.

    The map (layer resolution) is upsampled bilinearly to the image size with Captum's
    ``LayerAttribution.interpolate`` and drawn with transparency. Boxes are xyxy in continuous
    pixel coordinates (``x1, y1, x2, y2``; pixel ``(x, y)`` covers ``[x, x+1) × [y, y+1)``, so a
    box ``(0, 0, W, H)`` is the whole image; add 1 to ``x2, y2`` of inclusive-index boxes such as
    ``torchvision.ops.masks_to_boxes`` output). Predicted boxes are solid, true boxes dashed.

    Args:
        image: (C, H, W) with C = 1 or 3, or (H, W), values in [0, 1].
        attribution: (h, w) or (1, h, w) map.
        boxes: predicted boxes (n, 4), xyxy.
        true_boxes: ground-truth boxes (m, 4), xyxy.
        title: axes title.

    ``image`` and ``heatmap`` are the (H, W[, 3]) image and the upsampled (H, W) map that are
    drawn. After :meth:`plot`: ``image_`` and ``overlay_`` (the two ``AxesImage`` artists),
    ``box_patches_`` and ``true_box_patches_`` (the ``Rectangle`` patches), ``ax_``, ``figure_``.
    """

    def __init__(
        self,
        image: Tensor | np.ndarray,
        attribution: Tensor | np.ndarray,
        boxes: Tensor | np.ndarray | None = None,
        true_boxes: Tensor | np.ndarray | None = None,
        title: str | None = None,
    ) -> None:
        self.image = _image_hwc(image)
        self.heatmap = upsample_map(attribution, self.image.shape[:2])
        self.boxes = _boxes(boxes, "boxes")
        self.true_boxes = _boxes(true_boxes, "true_boxes")
        self.title = title

    @classmethod
    def from_maps(
        cls,
        image: Tensor | np.ndarray,
        attribution: Tensor | np.ndarray,
        boxes: Tensor | np.ndarray | None = None,
        true_boxes: Tensor | np.ndarray | None = None,
        *,
        title: str | None = None,
        ax: "Axes | None" = None,
        **plot_kwargs: Any,
    ) -> "AttributionOverlayDisplay":
        """Build from an image, its map and boxes, and plot.

        Example:
            >>> import matplotlib; matplotlib.use("agg")
            >>> image = torch.zeros(1, 8, 8)
            >>> display = AttributionOverlayDisplay.from_maps(
            ...     image, torch.ones(2, 2), boxes=torch.tensor([[1.0, 1.0, 5.0, 4.0]]))
            >>> display.overlay_.get_array().shape
            (8, 8)
        """
        return cls(image, attribution, boxes, true_boxes, title).plot(ax=ax, **plot_kwargs)

    def plot(
        self,
        ax: "Axes | None" = None,
        *,
        cmap: str = "jet",
        alpha: float = 0.5,
        box_color: str = "lime",
        true_box_color: str = "white",
        colorbar: bool = False,
    ) -> "AttributionOverlayDisplay":
        """Draw the image, the map (``alpha``) and the boxes.

        Returns:
            The Display, with ``ax_``, ``figure_``, ``image_``, ``overlay_``,
            ``box_patches_`` and ``true_box_patches_`` set.
        """
        from matplotlib.patches import Rectangle

        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        ax = _new_axes(ax, (3.0, 3.0))
        grey = self.image.ndim == 2
        height, width = self.heatmap.shape
        # extent: pixel (x, y) covers [x, x + 1) × [y, y + 1), so xyxy boxes are drawn as given.
        extent = (0.0, float(width), float(height), 0.0)
        self.image_ = ax.imshow(self.image, cmap="gray" if grey else None, vmin=0.0, vmax=1.0,
                                interpolation="nearest", extent=extent)
        self.overlay_ = ax.imshow(self.heatmap, cmap=cmap, alpha=alpha, interpolation="nearest",
                                  extent=extent)
        self.box_patches_ = []
        self.true_box_patches_ = []
        for boxes, color, style, store in (
            (self.true_boxes, true_box_color, "--", self.true_box_patches_),
            (self.boxes, box_color, "-", self.box_patches_),
        ):
            for x1, y1, x2, y2 in boxes:
                patch = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                  edgecolor=color, linestyle=style, linewidth=1.5)
                ax.add_patch(patch)
                store.append(patch)
        if colorbar:
            ax.figure.colorbar(self.overlay_, ax=ax, fraction=0.046)
        ax.set_axis_off()
        if self.title:
            ax.set_title(self.title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class ClassFiltersDisplay:
    """The filters of one class: the image, then one overlay per filter with its gate value.

    Args:
        image: (C, H, W) or (H, W) in [0, 1].
        maps: (n, h, w) activation maps of the chosen filters (layer resolution).
        filters: the n filter indices.
        gate_values: the n gate values ``G[c, k]`` (shown in the titles), or ``None``.
        class_name: the class's name (figure title).

    After :meth:`plot`: ``panels_`` (one :class:`AttributionOverlayDisplay` per filter),
    ``axes_`` and ``figure_``.
    """

    def __init__(
        self,
        image: Tensor | np.ndarray,
        maps: Tensor | np.ndarray,
        filters: Sequence[int] | Tensor | np.ndarray,
        gate_values: Sequence[float] | Tensor | np.ndarray | None = None,
        class_name: str | None = None,
    ) -> None:
        self.image = image
        self.maps = _to_numpy(maps, "maps", 3)
        indices = filters.tolist() if hasattr(filters, "tolist") else filters
        self.filters = [int(k) for k in indices]
        if len(self.filters) != self.maps.shape[0]:
            raise ValueError(
                f"got {self.maps.shape[0]} maps for {len(self.filters)} filter indices"
            )
        if gate_values is not None:
            gate_values = _to_numpy(gate_values, "gate_values", 1).tolist()
            if len(gate_values) != len(self.filters):
                raise ValueError(
                    f"got {len(gate_values)} gate values for {len(self.filters)} filters"
                )
        self.gate_values = gate_values
        self.class_name = class_name

    @classmethod
    def from_net(
        cls,
        net: CSGNet,
        image: Tensor,
        target: int,
        *,
        top: int = 8,
        threshold: float = 0.5,
        class_names: Sequence[str] | None = None,
        **plot_kwargs: Any,
    ) -> "ClassFiltersDisplay":
        """The ``top`` filters the gate gives class ``target`` and their maps on ``image``.

        Filters with gate ≥ ``threshold``, by decreasing gate value
        (:meth:`~csg_interp.training.ClassSpecificGate.filters_of`).

        Args:
            net: a CSGNet with a gate.
            image: one image (C, H, W) in [0, 1].
            target: the class.
            top: at most this many filters.
            threshold: minimum gate value.
            class_names: names of the classes (for the title).

        Raises:
            ValueError: for an STD model, a target out of range or no filter above ``threshold``.
        """
        if getattr(net, "gate", None) is None:
            raise ValueError(
                "this network has no gate (an STD model); build ClassFiltersDisplay(image, maps, "
                "filters) from your own filters"
            )
        if not isinstance(image, Tensor) or image.dim() != 3:
            raise ValueError("image must be one (C, H, W) tensor in [0, 1]")
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        filters = net.gate.filters_of(int(target), threshold)[:top]
        if filters.numel() == 0:
            raise ValueError(
                f"no filter has a gate value >= {threshold} for class {target}; lower threshold"
            )
        batch = image[None].float()
        check_images(batch, net.in_channels)
        with eval_mode(net) as device, torch.no_grad():
            activations = net.features(batch.to(device))[0].cpu()
        names = _class_names(class_names, net.num_classes) if class_names is not None else None
        display = cls(
            image,
            activations[filters],
            filters,
            net.gate.weight.detach()[int(target), filters].cpu(),
            names[int(target)] if names else str(int(target)),
        )
        return display.plot(**plot_kwargs)

    def plot(
        self,
        axes: Sequence["Axes"] | None = None,
        *,
        cmap: str = "jet",
        alpha: float = 0.5,
        columns: int = 5,
    ) -> "ClassFiltersDisplay":
        """Draw the image and one overlay per filter on ``axes`` (at least n + 1) or a new grid.

        Each filter's map is scaled by matplotlib to its own range.
        """
        import matplotlib.pyplot as plt

        count = len(self.filters) + 1
        if axes is None:
            cols = min(columns, count)
            rows = -(-count // cols)
            _, grid = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), squeeze=False)
            axes = list(grid.ravel())
        axes = list(np.ravel(axes))
        if len(axes) < count:
            raise ValueError(
                f"need {count} axes (the image and {count - 1} filters), got {len(axes)}"
            )
        image = _image_hwc(self.image)
        axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0,
                       interpolation="nearest")
        axes[0].set_title(f"class {self.class_name}" if self.class_name else "image")
        axes[0].set_axis_off()
        self.panels_ = []
        panels = zip(axes[1:], self.filters, self.maps)
        for index, (ax, filter_index, single_map) in enumerate(panels):
            title = f"filter {filter_index}"
            if self.gate_values is not None:
                title += f"\nG = {self.gate_values[index]:.2f}"
            self.panels_.append(
                AttributionOverlayDisplay(self.image, single_map, title=title).plot(
                    ax=ax, cmap=cmap, alpha=alpha
                )
            )
        for ax in axes[count:]:
            ax.set_axis_off()
        self.axes_ = np.array(axes, dtype=object)
        self.figure_ = axes[0].figure
        return self
