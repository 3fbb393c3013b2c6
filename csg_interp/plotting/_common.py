"""Helpers the Display modules share: input checks, class names, images and new axes (private).

Every check raises :class:`ValueError` with a message that says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


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
    """One name per class: the given ones (checked against ``num_classes``) or ``"0", "1", ...``.

    Args:
        class_names: the names in label order, or ``None``.
        num_classes: the number of classes (rows) of the matrix drawn.

    Returns:
        ``num_classes`` strings.
    """
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"got {len(names)} class names for a matrix with {num_classes} classes (rows); "
            "pass one name per class, in label order"
        )
    return names


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


def _new_axes(ax: "Axes | None", figsize: tuple[float, float]) -> "Axes":
    """``ax`` itself, or the axes of a new figure of ``figsize`` when ``ax`` is ``None``.

    Args:
        ax: the caller's axes, or ``None``.
        figsize: the new figure's size in inches.

    Returns:
        The axes to draw on.
    """
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax
