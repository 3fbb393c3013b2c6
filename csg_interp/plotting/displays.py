"""scikit-learn-style Display objects for gates, MI matrices and attribution maps.

Each Display follows the convention of scikit-learn's ``RocCurveDisplay``: ``from_*`` class
methods take arrays, tensors or a :class:`~csg_interp.training.CSGNet`, build the Display and call
:meth:`plot`; ``plot(ax=...)`` draws onto given axes (or a new figure) and stores the artists as
attributes with a trailing underscore (``figure_``, ``ax_``, ``mesh_``, ...). A Display never
trains or evaluates a model beyond what it shows.

Heatmaps are drawn with :func:`seaborn.heatmap` (one ``QuadMesh``, ``ax.collections[0]``), classes
on the vertical axis and filters on the horizontal axis (the paper's C×K orientation). Filters are
sorted by the class they are assigned to (argmax over classes, ties to the lowest class), and
within a class by decreasing value, so class-specific filters form a block diagonal. The paper's
figures are not sorted this way [UNVERIFIED]; we sort for readability and every caption says so.

Sources: the gate and MI matrix of Liang et al. (ECCV 2020) and the reference code
``hyliang96/CSGCNN`` (``mutualinfo.py``, ``activmap.py``); the four-panel figure
(G, W of the CSG model, W of the STD model, G⊙W) as reproduced by ``NeverGiveU/NNInterpretation``
[2ND]. Display API after ``sklearn.metrics.RocCurveDisplay``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from csg_interp._utils import eval_mode, min_max
from csg_interp.training.gate import gate_assignment
from csg_interp.training.network import CSGNet, check_images

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

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

SORT_CAPTION = (
    "Filters are sorted by their assigned class (argmax over classes), then by decreasing value, "
    "so class-specific filters form a block diagonal."
)


# ----------------------------------------------------------------------------- helpers
def _to_numpy(values: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A finite float64 array of the given number of dimensions, from a tensor or array-like."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
            f"got shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values; check the model or the input")
    return array


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"got {len(names)} class names for a matrix with {num_classes} classes (rows); "
            "pass one name per class, in label order"
        )
    return names


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


def _new_axes(ax: "Axes | None", figsize: tuple[float, float]) -> "Axes":
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


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


# ----------------------------------------------------------------------- heatmaps
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


# ---------------------------------------------------------------- composites
class GateWeightPanelsDisplay:
    """The paper's four-panel figure: G, W (CSG model), W (STD model) and G⊙W, stacked.

    Every panel is min-max scaled to [0, 1] (as in the reproduction of the paper's figure [2ND]).
    G, W_CSG and G⊙W share the CSG model's filter order (sorted by the gate's assigned class); the
    STD model's filters are unrelated to the CSG model's, so W_STD is sorted by its own argmax
    class. Both orders are stored.

    Args:
        gate: (C, K) gate of the CSG model.
        csg_weight: (C, K) final linear weights W of the CSG model.
        std_weight: (C, K') final linear weights W of the STD model.
        class_names: one name per class.
        sort: sort filters by class (block diagonals).

    Attributes:
        panels: ``{"gate", "csg_weight", "std_weight", "gated_weight"}`` → the scaled, sorted
            (C, K) arrays that are drawn, in drawing order.
        plotted: after :meth:`plot`, ``axes_``, ``figure_`` and ``meshes_``.
    """

    titles = {
        "gate": "gate G (CSG model)",
        "csg_weight": "FC weights W (CSG model)",
        "std_weight": "FC weights W (STD model)",
        "gated_weight": "G ⊙ W (CSG model)",
    }

    def __init__(
        self,
        gate: Tensor | np.ndarray,
        csg_weight: Tensor | np.ndarray,
        std_weight: Tensor | np.ndarray,
        class_names: Sequence[str] | None = None,
        sort: bool = True,
    ) -> None:
        gate = _to_numpy(gate, "gate", 2)
        csg_weight = _to_numpy(csg_weight, "CSG weights", 2)
        std_weight = _to_numpy(std_weight, "STD weights", 2)
        if csg_weight.shape != gate.shape:
            raise ValueError(
                f"the CSG model's weights {csg_weight.shape} do not match its gate {gate.shape}; "
                "both are (classes, filters)"
            )
        if std_weight.shape[0] != gate.shape[0]:
            raise ValueError(
                f"the STD model has {std_weight.shape[0]} classes, the CSG model {gate.shape[0]}"
            )
        self.class_names = _class_names(class_names, gate.shape[0])
        num_filters = gate.shape[1]
        self.csg_order = class_sorted_order(gate) if sort else np.arange(num_filters)
        self.std_order = class_sorted_order(std_weight) if sort else np.arange(std_weight.shape[1])
        self.sorted = sort
        self.panels = {
            "gate": min_max(gate)[:, self.csg_order],
            "csg_weight": min_max(csg_weight)[:, self.csg_order],
            "std_weight": min_max(std_weight)[:, self.std_order],
            "gated_weight": min_max(gate * csg_weight)[:, self.csg_order],
        }

    @property
    def caption(self) -> str:
        text = (
            "Top to bottom: the gate G, the final-layer weights W of the CSG model, W of the STD "
            "model and G⊙W; each min-max scaled to [0, 1]."
        )
        if self.sorted:
            text += (
                " Filters are sorted by assigned class (G's argmax for the CSG panels, W's argmax "
                "for the STD panel), so class-specific filters form a block diagonal."
            )
        return text

    @classmethod
    def from_nets(
        cls,
        csg_net: CSGNet,
        std_net: CSGNet,
        class_names: Sequence[str] | None = None,
        *,
        sort: bool = True,
        axes: Sequence["Axes"] | None = None,
        **plot_kwargs: Any,
    ) -> "GateWeightPanelsDisplay":
        """Build from a CSG model and its STD twin (both with a GAP → linear head).

        Raises:
            ValueError: if ``csg_net`` has no gate or a head is not GAP → linear.
        """
        if getattr(csg_net, "gate", None) is None:
            raise ValueError("csg_net has no gate; pass the CSG model first, the STD model second")
        display = cls(
            csg_net.gate.weight,
            csg_net.linear_head.weight,
            std_net.linear_head.weight,
            class_names,
            sort,
        )
        return display.plot(axes=axes, **plot_kwargs)

    def plot(
        self,
        axes: Sequence["Axes"] | None = None,
        *,
        cmap: str = "viridis",
        colorbar: bool = True,
        max_filter_labels: int = 40,
    ) -> "GateWeightPanelsDisplay":
        """Draw the four panels on ``axes`` (four axes) or on a new figure.

        Returns:
            The Display, with ``axes_``, ``figure_`` and ``meshes_`` (one QuadMesh per panel).
        """
        axes, created = _stacked_axes(
            axes, 4, max(panel.shape[1] for panel in self.panels.values()),
            max(1.6, 0.3 * len(self.class_names) + 0.8), "the four-panel figure",
        )  # fmt: skip
        self.meshes_ = []
        for ax, (name, panel) in zip(axes, self.panels.items()):
            order = self.std_order if name == "std_weight" else self.csg_order
            mesh = _draw_heatmap(
                ax,
                panel,
                self.class_names,
                _filter_ticks(order, max_filter_labels),
                cmap=cmap,
                vmin=0.0,
                vmax=1.0,
                colorbar=colorbar,
                cbar_label="scaled",
            )
            ax.set_title(self.titles[name])
            ax.set_xlabel("filter (sorted by assigned class)" if self.sorted else "filter")
            self.meshes_.append(mesh)
        self.axes_ = np.array(axes, dtype=object)
        self.figure_ = axes[0].figure
        if created:
            self.figure_.tight_layout()
        return self


def _mi_score(matrix: np.ndarray) -> float:
    """MIS as in ``docs/method.md`` §5 (mean over filters of the max over classes), via metrics."""
    from csg_interp.metrics import mi_score

    return float(mi_score(torch.as_tensor(matrix)))


class MIComparisonDisplay:
    """CSG vs STD mutual-information matrices side by side, on one shared colour scale.

    Each matrix is sorted by its own assigned class (the two models' filters are unrelated). The
    titles carry each model's MIS (mean over filters of the max over classes).

    Args:
        csg_mi: (C, K) MI matrix of the CSG model.
        std_mi: (C, K') MI matrix of the STD model.
        class_names: one name per class.
        sort: sort each matrix's filters by class.
        names: the two models' names in titles and captions (default ``("CSG", "STD")``).

    Attributes:
        matrices: ``{names[0]: sorted csg_mi, names[1]: sorted std_mi}`` as drawn.
        scores: ``{names[0]: MIS, names[1]: MIS}``.
        vmax: the shared upper end of the colour scale (the larger maximum).
        plotted: after :meth:`plot`, ``axes_``, ``figure_`` and ``meshes_``.
    """

    def __init__(
        self,
        csg_mi: Tensor | np.ndarray,
        std_mi: Tensor | np.ndarray,
        class_names: Sequence[str] | None = None,
        sort: bool = True,
        names: tuple[str, str] = ("CSG", "STD"),
    ) -> None:
        if len(names) != 2 or names[0] == names[1]:
            raise ValueError(f"names must be two different model names, got {names!r}")
        self.names = (str(names[0]), str(names[1]))
        first, second = self.names
        raw = {
            first: _to_numpy(csg_mi, f"{first} MI matrix", 2),
            second: _to_numpy(std_mi, f"{second} MI matrix", 2),
        }
        if raw[first].shape[0] != raw[second].shape[0]:
            raise ValueError(
                f"the MI matrices have {raw[first].shape[0]} and {raw[second].shape[0]} classes; "
                "compare models trained on the same classes"
            )
        for name, matrix in raw.items():
            if (matrix < 0).any():
                raise ValueError(
                    f"the {name} MI matrix has negative entries; clip estimator noise first"
                )
        self.class_names = _class_names(class_names, raw[first].shape[0])
        self.sorted = sort
        self.orders = {
            name: class_sorted_order(m) if sort else np.arange(m.shape[1])
            for name, m in raw.items()
        }
        self.matrices = {name: m[:, self.orders[name]] for name, m in raw.items()}
        self.scores = {name: _mi_score(m) for name, m in raw.items()}
        self.vmax = float(max(m.max() for m in raw.values()))

    @property
    def caption(self) -> str:
        first, second = self.names
        text = (
            f"MI between each filter's pooled activation and each class indicator (nats), "
            f"{first} (MIS {self.scores[first]:.4f}) vs {second} (MIS {self.scores[second]:.4f}), "
            "one colour scale."
        )
        if self.sorted:
            text += " Each model's filters are sorted by the class they are most informative about."
        return text

    @classmethod
    def from_matrices(
        cls,
        csg_mi: Tensor | np.ndarray,
        std_mi: Tensor | np.ndarray,
        class_names: Sequence[str] | None = None,
        *,
        sort: bool = True,
        names: tuple[str, str] = ("CSG", "STD"),
        axes: Sequence["Axes"] | None = None,
        **plot_kwargs: Any,
    ) -> "MIComparisonDisplay":
        """Build from two MI matrices and plot them."""
        return cls(csg_mi, std_mi, class_names, sort, names).plot(axes=axes, **plot_kwargs)

    def plot(
        self,
        axes: Sequence["Axes"] | None = None,
        *,
        cmap: str = "viridis",
        max_filter_labels: int = 40,
    ) -> "MIComparisonDisplay":
        """Draw the two heatmaps (the first model on top) with one colour bar each, same scale.

        Returns:
            The Display, with ``axes_``, ``figure_`` and ``meshes_``.
        """
        axes, created = _stacked_axes(
            axes, 2, max(m.shape[1] for m in self.matrices.values()),
            max(2.0, 0.35 * len(self.class_names) + 1), "the MI comparison",
        )  # fmt: skip
        self.meshes_ = []
        for ax, (name, matrix) in zip(axes, self.matrices.items()):
            mesh = _draw_heatmap(
                ax,
                matrix,
                self.class_names,
                _filter_ticks(self.orders[name], max_filter_labels),
                cmap=cmap,
                vmin=0.0,
                vmax=self.vmax,
                colorbar=True,
                cbar_label="MI (nats)",
            )
            ax.set_title(f"{name} model: MIS = {self.scores[name]:.4f}")
            ax.set_xlabel("filter (sorted by assigned class)" if self.sorted else "filter")
            self.meshes_.append(mesh)
        self.axes_ = np.array(axes, dtype=object)
        self.figure_ = axes[0].figure
        if created:
            self.figure_.tight_layout()
        return self


# ------------------------------------------------------------------ overlays
def _image_hwc(image: Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) in [0, 1] → (H, W) grey or (H, W, 3) RGB float array."""
    array = _to_numpy(image, "image", (2, 3))
    if array.ndim == 3:
        if array.shape[0] not in (1, 3):
            raise ValueError(
                f"image must be (C, H, W) with C = 1 or 3 (channels first, as the model takes it), "
                f"got shape {array.shape}"
            )
        array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"image values must lie in [0, 1] (pixel units), got [{array.min():.3g}, "
            f"{array.max():.3g}]; pass the raw input, not the normalised one"
        )
    return array


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


# ---------------------------------------------------------------- the filter atlas
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
