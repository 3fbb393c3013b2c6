"""Class × filter heatmaps: :class:`GateHeatmapDisplay` (the gate G) and :class:`MIHeatmapDisplay`
(the MI matrix), and the class-sorted filter order they share with the composite figures.

Heatmaps are drawn with :func:`seaborn.heatmap` (one ``QuadMesh``, ``ax.collections[0]``), classes
on the vertical axis and filters on the horizontal axis (the paper's C×K orientation). Filters are
sorted by the class they are assigned to (argmax over classes, ties to the lowest class), and
within a class by decreasing value, so class-specific filters form a block diagonal. The paper's
figures are not sorted this way [UNVERIFIED]; we sort for readability and every caption says so.

Sources: the gate and MI matrix of Liang et al. (ECCV 2020) and its reference code
(``docs/method.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from csg_interp.training.gate import gate_assignment
from csg_interp.training.network import CSGNet

from ._common import _class_names, _new_axes, _to_numpy

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["SORT_CAPTION", "class_sorted_order", "GateHeatmapDisplay", "MIHeatmapDisplay"]

SORT_CAPTION = (
    "Filters are sorted by their assigned class (argmax over classes), then by decreasing value, "
    "so class-specific filters form a block diagonal."
)


def class_sorted_order(matrix: Tensor | np.ndarray) -> np.ndarray:
    """The filter order that makes a C×K class-filter matrix block diagonal.

    Filters are sorted by their assigned class ``argmax_c M[c, k]`` (ties: lowest class, as
    :func:`~csg_interp.training.gate_assignment`), then by decreasing ``max_c M[c, k]``, then by
    index.

    Args:
        matrix: a (C, K) gate, MI matrix or weight matrix.

    Returns:
        An int64 permutation of ``range(K)``; ``matrix[:, order]`` is the sorted matrix.

    Example:
        >>> class_sorted_order(np.array([[0.1, 0.9, 0.0], [0.8, 0.2, 0.5]]))
        array([1, 0, 2])
    """
    values = torch.as_tensor(_to_numpy(matrix, "matrix", 2))
    assigned = gate_assignment(values).numpy()
    strength = values.max(dim=0).values.numpy()
    # np.lexsort sorts by the last key first: class, then -strength, then index.
    return np.lexsort((np.arange(values.shape[1]), -strength, assigned)).astype(np.int64)


def _filter_ticks(order: np.ndarray, max_labels: int) -> list[str] | bool:
    return [str(int(k)) for k in order] if len(order) <= max_labels else False


def _stacked_axes(
    axes: Any, count: int, num_filters: int, panel_height: float, what: str
) -> tuple[list["Axes"], bool]:
    """``count`` axes stacked vertically: the caller's (checked) or a new figure's.

    Returns the axes as a list and whether the figure was created here. No layout engine is set
    while drawing: seaborn draws the whole figure once per heatmap (to check tick-label
    overlap), and constrained layout would redo it every time.
    """
    import matplotlib.pyplot as plt

    created = axes is None
    if created:
        width = max(5.0, min(16.0, 0.18 * num_filters + 2))
        _, axes = plt.subplots(count, 1, figsize=(width, count * panel_height))
    axes = list(np.ravel(axes))
    if len(axes) != count:
        raise ValueError(f"{what} needs {count} axes, got {len(axes)}")
    return axes, created


def _draw_heatmap(
    ax: "Axes",
    matrix: np.ndarray,
    class_names: list[str],
    xticklabels: list[str] | bool,
    *,
    cmap: str,
    vmin: float | None,
    vmax: float | None,
    colorbar: bool,
    cbar_label: str,
) -> Any:
    """One seaborn heatmap (classes × filters); returns its QuadMesh."""
    import seaborn as sns

    sns.heatmap(
        matrix,
        ax=ax,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        cbar=colorbar,
        cbar_kws={"label": cbar_label} if colorbar else None,
        xticklabels=xticklabels,
        yticklabels=class_names,
    )
    ax.set_yticklabels(class_names, rotation=0)
    ax.set_ylabel("class")
    return ax.collections[0]


def _block_boundaries(sorted_assignment: np.ndarray) -> np.ndarray:
    """x positions between class blocks of a class-sorted matrix."""
    return np.flatnonzero(np.diff(sorted_assignment)) + 1


class _ClassFilterHeatmap:
    """Shared body of the gate and MI heatmaps: a (C, K) matrix drawn class-sorted."""

    _quantity = "value"
    _cbar_label = "value"
    _default_vmax: float | None = None

    def __init__(
        self,
        matrix: Tensor | np.ndarray,
        class_names: Sequence[str] | None = None,
        filter_order: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        self.matrix = _to_numpy(matrix, self._quantity, 2)
        num_classes, num_filters = self.matrix.shape
        self.class_names = _class_names(class_names, num_classes)
        if filter_order is None:
            order = np.arange(num_filters, dtype=np.int64)
        else:
            order = np.asarray(filter_order, dtype=np.int64)
            if sorted(order.tolist()) != list(range(num_filters)):
                raise ValueError(
                    f"filter_order must be a permutation of range({num_filters}); use "
                    "class_sorted_order(matrix) or None for the original order"
                )
        self.filter_order = order

    @classmethod
    def _plotted(
        cls, matrix: np.ndarray, class_names: Sequence[str] | None, sort: bool,
        ax: "Axes | None", plot_kwargs: dict[str, Any],
    ) -> Any:  # fmt: skip
        """A Display of a checked (C, K) matrix, plotted: the body of every ``from_*``.

        Args:
            matrix: the matrix, already converted and checked by the caller.
            class_names: one name per class.
            sort: sort filters by assigned class (:func:`class_sorted_order`).
            ax: axes to draw on (``None``: a new figure).
            plot_kwargs: passed to :meth:`plot`.

        Returns:
            The plotted Display (an instance of ``cls``).
        """
        order = class_sorted_order(matrix) if sort else None
        return cls(matrix, class_names, order).plot(ax=ax, **plot_kwargs)

    @property
    def sorted_matrix(self) -> np.ndarray:
        """The matrix with its columns in ``filter_order``, as drawn."""
        return self.matrix[:, self.filter_order]

    @property
    def caption(self) -> str:
        """A one-paragraph caption for reports and galleries."""
        num_classes, num_filters = self.matrix.shape
        text = f"{self._quantity} ({num_classes} classes × {num_filters} filters)."
        if not np.array_equal(self.filter_order, np.arange(num_filters)):
            text += " " + SORT_CAPTION
        return text

    def plot(
        self,
        ax: "Axes | None" = None,
        *,
        cmap: str = "viridis",
        vmin: float | None = 0.0,
        vmax: float | None = None,
        colorbar: bool = True,
        block_lines: bool = True,
        title: str | None = None,
        max_filter_labels: int = 40,
    ):
        """Draw the heatmap.

        Args:
            ax: axes to draw on; a new figure when ``None``.
            cmap: a matplotlib colormap name.
            vmin: lower end of the colour scale.
            vmax: upper end (``None``: the matrix maximum, or 1 for a gate).
            colorbar: draw a colour bar.
            block_lines: draw white lines between class blocks (sorted matrices only).
            title: axes title (default: the quantity's name).
            max_filter_labels: label each filter column with its index up to this many filters.

        Returns:
            The Display, with ``ax_``, ``figure_``, ``mesh_`` (the ``QuadMesh``) and
            ``colorbar_`` (or ``None``) set.
        """
        num_classes, num_filters = self.matrix.shape
        figsize = (max(4.0, min(16.0, 0.18 * num_filters + 2)), max(2.5, 0.35 * num_classes + 1))
        ax = _new_axes(ax, figsize)
        vmax = self._default_vmax if vmax is None else vmax
        self.mesh_ = _draw_heatmap(
            ax,
            self.sorted_matrix,
            self.class_names,
            _filter_ticks(self.filter_order, max_filter_labels),
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            colorbar=colorbar,
            cbar_label=self._cbar_label,
        )
        sorted_by_class = not np.array_equal(self.filter_order, np.arange(num_filters))
        ax.set_xlabel("filter (sorted by assigned class)" if sorted_by_class else "filter")
        if block_lines and sorted_by_class:
            assignment = gate_assignment(torch.as_tensor(self.sorted_matrix)).numpy()
            for x in _block_boundaries(assignment):
                ax.axvline(x, color="white", linewidth=0.8)
        ax.set_title(self._quantity if title is None else title)
        self.colorbar_ = self.mesh_.colorbar if colorbar else None
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class GateHeatmapDisplay(_ClassFilterHeatmap):
    """Heatmap of a class-specific gate ``G`` (classes × filters), filters sorted by class.

    Args:
        gate: the (C, K) gate.
        class_names: one name per class (row), default ``"0", "1", ...``.
        filter_order: column order to draw; ``None`` keeps the original order.

    After :meth:`plot`, ``ax_`` and ``figure_`` hold the axes and figure, ``mesh_`` the seaborn
    ``QuadMesh`` (``mesh_.get_array()`` is :attr:`sorted_matrix`) and ``colorbar_`` the colour
    bar (or ``None``).

    Example:
        >>> import matplotlib; matplotlib.use("agg")
        >>> gate = np.array([[1.0, 0.0, 0.2], [0.1, 1.0, 1.0]])
        >>> display = GateHeatmapDisplay.from_gate(gate, class_names=["cat", "dog"])
        >>> display.filter_order
        array([0, 1, 2])
        >>> [t.get_text() for t in display.ax_.get_yticklabels()]
        ['cat', 'dog']
    """

    _quantity = "gate G"
    _cbar_label = "gate value"
    _default_vmax = 1.0

    @classmethod
    def from_gate(
        cls, gate: Tensor | np.ndarray, class_names: Sequence[str] | None = None, *,
        sort: bool = True, ax: "Axes | None" = None, **plot_kwargs: Any,
    ) -> "GateHeatmapDisplay":  # fmt: skip
        """Plot a (C, K) gate matrix (e.g. ``net.gate.weight`` or ``gate_from_mi(M)``).

        Args:
            gate: the gate, values in [0, 1].
            class_names: one name per class.
            sort: sort filters by assigned class (a block diagonal).
            ax: axes to draw on.
            **plot_kwargs: passed to :meth:`plot`.

        Returns:
            The plotted Display.
        """
        return cls._plotted(_to_numpy(gate, "gate", 2), class_names, sort, ax, plot_kwargs)

    @classmethod
    def from_net(
        cls,
        net: CSGNet,
        class_names: Sequence[str] | None = None,
        *,
        sort: bool = True,
        ax: "Axes | None" = None,
        **plot_kwargs: Any,
    ) -> "GateHeatmapDisplay":
        """Plot the gate of a :class:`~csg_interp.training.CSGNet`.

        Raises:
            ValueError: if the network has no gate (an STD model).
        """
        if getattr(net, "gate", None) is None:
            raise ValueError(
                "this network has no gate (an STD model); for an STD model plot a gate derived "
                "from its MI matrix: GateHeatmapDisplay.from_gate(gate_from_mi(M))"
            )
        return cls.from_gate(net.gate.weight, class_names, sort=sort, ax=ax, **plot_kwargs)


class MIHeatmapDisplay(_ClassFilterHeatmap):
    """Heatmap of a mutual-information matrix ``M[c, k] = MI(filter k ; y == c)`` in nats.

    Filters sorted by the class they are most informative about. The reference code plots 64
    random filters with the ``jet`` colormap and swapped axis labels (``docs/method.md`` §8); we
    plot all filters, class-sorted, with ``viridis``.

    Example:
        >>> import matplotlib; matplotlib.use("agg")
        >>> mi = np.array([[0.30, 0.01], [0.02, 0.25]])
        >>> MIHeatmapDisplay.from_matrix(mi, ["a", "b"]).mesh_.get_array().shape
        (2, 2)
    """

    _quantity = "mutual information"
    _cbar_label = "MI (nats)"

    @classmethod
    def from_matrix(
        cls, mi: Tensor | np.ndarray, class_names: Sequence[str] | None = None, *,
        sort: bool = True, ax: "Axes | None" = None, **plot_kwargs: Any,
    ) -> "MIHeatmapDisplay":  # fmt: skip
        """Plot a (C, K) MI matrix (``mutual_information_matrix(...)``).

        Args:
            mi: the MI matrix in nats, non-negative.
            class_names: one name per class.
            sort: sort filters by their most informative class (a block diagonal).
            ax: axes to draw on.
            **plot_kwargs: passed to :meth:`plot`.

        Returns:
            The plotted Display.

        Raises:
            ValueError: for negative entries (MI is non-negative; clip estimator noise first).
        """
        matrix = _to_numpy(mi, "MI matrix", 2)
        if (matrix < 0).any():
            raise ValueError(
                f"MI matrix has negative entries (min {matrix.min():.3g}); mutual information is "
                "non-negative, clip estimator noise with np.clip(M, 0, None)"
            )
        return cls._plotted(matrix, class_names, sort, ax, plot_kwargs)
