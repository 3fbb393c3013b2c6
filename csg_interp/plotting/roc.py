"""ROC curves of detector scores, drawn with scikit-learn's ``RocCurveDisplay``.

Rendering only: the curves come from arrays that :mod:`~csg_interp.applications.evaluation`
computed. Adversarial samples are the positive class. Every score keeps its colour
(:data:`~csg_interp.plotting.colors.SCORE_COLORS`) in every panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .colors import SCORE_COLORS

__all__ = ["plot_roc_curves", "save_roc_figures"]


def plot_roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ax=None,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
):
    """Draw one ROC curve per score on one axes.

    Args:
        curves: ``name -> (y_true, y_score)`` with ``y_true`` 1 for adversarial, 0 for clean. The
            legend shows ``name (AUC = …)``.
        ax: a matplotlib axes; a new 4.5×4.5 in figure when ``None``.
        title: the axes title.
        colors: optional ``name -> matplotlib colour``, so that a score keeps its colour across
            panels (names missing from it take the next colour of the cycle).

    Returns:
        The list of ``sklearn.metrics.RocCurveDisplay`` objects (``.figure_``, ``.ax_``,
        ``.line_`` for inspection), in the order of ``curves``.

    Raises:
        ValueError: for an empty mapping.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> y = np.array([0, 0, 1, 1])
        >>> displays = plot_roc_curves({"perfect": (y, np.array([0.1, 0.2, 0.8, 0.9]))})
        >>> round(displays[0].roc_auc, 3)
        1.0
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import RocCurveDisplay

    if not curves:
        raise ValueError("no curves to plot; pass at least one name -> (y_true, y_score)")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    displays = []
    last = len(curves) - 1
    for index, (name, (y_true, y_score)) in enumerate(curves.items()):
        displays.append(
            RocCurveDisplay.from_predictions(
                np.asarray(y_true), np.asarray(y_score), name=name, ax=ax,
                plot_chance_level=index == last,
                curve_kwargs={"color": colors[name]} if colors and name in colors else None,
            )
        )
    ax.set_xlabel("false-positive rate (clean flagged)")
    ax.set_ylabel("true-positive rate (adversarial flagged)")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return displays


def save_roc_figures(
    evaluations: Sequence[Any], eps_values: Sequence[float], method: str, out: Path
) -> list[str]:
    """One PNG per ε, ``roc_<method>_eps<ε>.png`` in ``out``: a panel per model with its scores.

    Args:
        evaluations: one :class:`~csg_interp.applications.DetectionEvaluation` per model.
        eps_values: the radii; a radius without curves is skipped.
        method: the attack's name (``pgd``/``fgsm``), for the titles and file names.
        out: the folder to write to.

    Returns:
        The file names written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for eps in eps_values:
        panels = [e for e in evaluations if e.curves.get(eps)]
        if not panels:
            continue
        figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False)
        for ax, evaluation in zip(axes[0], panels):
            plot_roc_curves(evaluation.curves[eps], ax=ax, colors=SCORE_COLORS,
                            title=f"{evaluation.model.upper()} model, {method.upper()} ε={eps:g}")
        figure.tight_layout()
        path = out / f"roc_{method}_eps{eps:g}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path.name)
    return paths
