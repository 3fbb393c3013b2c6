"""Composite figures of stacked heatmaps: the paper's four panels (:class:`GateWeightPanelsDisplay`:
G, W of the CSG model, W of the STD model, G⊙W) and CSG vs STD MI matrices
(:class:`MIComparisonDisplay`), drawn with the heatmaps' helpers (:mod:`.heatmaps`).

Source of the four-panel figure: Liang et al. (ECCV 2020), as reproduced by
``NeverGiveU/NNInterpretation`` [2ND].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from csg_interp._utils import min_max
from csg_interp.training.network import CSGNet

from ._common import _class_names, _to_numpy
from .heatmaps import _draw_heatmap, _filter_ticks, _stacked_axes, class_sorted_order

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["GateWeightPanelsDisplay", "MIComparisonDisplay"]


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
        names = list(self.panels)
        return _plot_stacked(
            self, axes, [self.panels[name] for name in names],
            [self.std_order if name == "std_weight" else self.csg_order for name in names],
            [self.titles[name] for name in names],
            max(1.6, 0.3 * len(self.class_names) + 0.8), "the four-panel figure",
            cmap=cmap, vmax=1.0, colorbar=colorbar, cbar_label="scaled",
            max_filter_labels=max_filter_labels,
        )  # fmt: skip


def _plot_stacked(
    display: Any, axes: Any, matrices: list[np.ndarray], orders: list[np.ndarray],
    titles: list[str], panel_height: float, what: str, *, cmap: str, vmax: float | None,
    colorbar: bool, cbar_label: str, max_filter_labels: int,
) -> Any:  # fmt: skip
    """Draw class × filter heatmaps one above the other and set the Display's artists.

    Sets ``display.meshes_`` (one QuadMesh per panel), ``axes_`` and ``figure_``; lays out the
    figure only when it was created here. Returns ``display``.
    """
    axes, created = _stacked_axes(
        axes, len(matrices), max(m.shape[1] for m in matrices), panel_height, what
    )
    display.meshes_ = []
    for ax, matrix, order, title in zip(axes, matrices, orders, titles):
        mesh = _draw_heatmap(
            ax, matrix, display.class_names, _filter_ticks(order, max_filter_labels),
            cmap=cmap, vmin=0.0, vmax=vmax, colorbar=colorbar, cbar_label=cbar_label,
        )  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("filter (sorted by assigned class)" if display.sorted else "filter")
        display.meshes_.append(mesh)
    display.axes_ = np.array(axes, dtype=object)
    display.figure_ = axes[0].figure
    if created:
        display.figure_.tight_layout()
    return display


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
        names = list(self.matrices)
        return _plot_stacked(
            self, axes, [self.matrices[name] for name in names],
            [self.orders[name] for name in names],
            [f"{name} model: MIS = {self.scores[name]:.4f}" for name in names],
            max(2.0, 0.35 * len(self.class_names) + 1), "the MI comparison",
            cmap=cmap, vmax=self.vmax, colorbar=True, cbar_label="MI (nats)",
            max_filter_labels=max_filter_labels,
        )  # fmt: skip
