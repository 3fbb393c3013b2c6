"""Training curves from a run's ``metrics.jsonl`` (one row per epoch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CURVE_PANELS", "plot_training_curves"]

#: Panel title → the ``metrics.jsonl`` columns drawn in it (absent or all-null columns are
#: skipped, and so is a panel with none left).
CURVE_PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "ce_std", "ce_csg", "val_loss"),
    "accuracy": ("train_acc_std", "train_acc_csg", "val_acc"),
    "gate L1-density": ("gate_density",),
    "learning rate": ("lr_std", "lr_csg", "lr_gate"),
}


def _column(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """The column as floats, NaN where a row lacks it or holds ``None``."""
    values = [row.get(key) for row in history]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def plot_training_curves(
    history: Sequence[Mapping[str, Any]],
    baseline: Sequence[Mapping[str, Any]] | None = None,
    axes: Sequence[Any] | None = None,
):
    """Draw a run's per-epoch curves: losses, accuracies, gate density and learning rates.

    Epochs (x axis, counted from 1) whose ``kind`` is ``"csg"`` are shaded, so the alternating
    schedule is visible. With ``baseline`` (e.g. the STD twin's history) its validation accuracy
    and loss are drawn dashed in the same panels.

    Args:
        history: the rows of ``metrics.jsonl`` (:func:`csg_interp.training.runs.read_history`).
        baseline: another run's rows, or ``None``.
        axes: one axes per drawn panel; a new row of panels when ``None``.

    Returns:
        ``(figure, {panel title: axes})``.

    Raises:
        ValueError: if ``history`` is empty or has no known column.

    Example:
        >>> import matplotlib; matplotlib.use("agg")
        >>> rows = [{"epoch": 0, "kind": "std", "loss": 1.0, "val_acc": 0.5},
        ...         {"epoch": 1, "kind": "csg", "loss": 0.5, "val_acc": 0.7}]
        >>> figure, panels = plot_training_curves(rows)
        >>> sorted(panels)
        ['accuracy', 'loss']
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not history:
        raise ValueError("the history is empty: the run has no finished epoch (metrics.jsonl)")
    drawn = {
        title: [key for key in keys if not np.all(np.isnan(_column(history, key)))]
        for title, keys in CURVE_PANELS.items()
    }
    drawn = {title: keys for title, keys in drawn.items() if keys}
    if not drawn:
        known = sorted({key for keys in CURVE_PANELS.values() for key in keys})
        raise ValueError(f"no known column in the history; expected some of: {', '.join(known)}")
    if axes is None:
        _, grid = plt.subplots(1, len(drawn), figsize=(3.6 * len(drawn), 3.0), squeeze=False,
                               constrained_layout=True)
        axes = list(grid.ravel())
    axes = list(np.ravel(axes))
    if len(axes) != len(drawn):
        raise ValueError(f"need {len(drawn)} axes (panels: {', '.join(drawn)}), got {len(axes)}")
    epochs = np.arange(1, len(history) + 1)
    csg_epochs = [e for e, row in zip(epochs, history) if row.get("kind") == "csg"]
    panels = {}
    for ax, (title, keys) in zip(axes, drawn.items()):
        for epoch in csg_epochs:
            ax.axvspan(epoch - 0.5, epoch + 0.5, color="tab:orange", alpha=0.12, linewidth=0)
        for key in keys:
            ax.plot(epochs, _column(history, key), marker=".", label=key)
        if baseline and title in ("loss", "accuracy"):
            key = "val_loss" if title == "loss" else "val_acc"
            values = _column(baseline, key)
            if not np.all(np.isnan(values)):
                ax.plot(np.arange(1, len(baseline) + 1), values, linestyle="--", color="black",
                        label=f"{key} (baseline)")
        if title == "learning rate":
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("epoch (CSG epochs shaded)" if csg_epochs else "epoch")
        ax.legend(fontsize="x-small")
        panels[title] = ax
    return axes[0].figure, panels
