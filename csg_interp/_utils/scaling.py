"""Min-max scaling to [0, 1], for numpy arrays and torch tensors."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["min_max"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def min_max(values: ArrayT, start_dim: int | None = None) -> ArrayT:
    """Scale to [0, 1]: ``(x - min) / (max - min)``; a constant slice becomes all zeros.

    Args:
        values: a numpy array or a torch tensor (floating point).
        start_dim: ``None`` scales by the global minimum and maximum; an integer ``d`` scales
            each slice ``values[i_0, ..., i_{d-1}]`` by its own (e.g. ``1`` for a batch of maps,
            one scale per map).

    Returns:
        The scaled values, same type and shape.

    Example:
        >>> min_max(np.array([1.0, 2.0, 3.0]))
        array([0. , 0.5, 1. ])
        >>> min_max(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), start_dim=1)
        tensor([[0., 1.],
                [0., 0.]])
    """
    if isinstance(values, torch.Tensor):
        if start_dim is None:
            low, high = values.min(), values.max()
        else:
            flat = values.flatten(start_dim)
            shape = (*values.shape[:start_dim], *([1] * (values.dim() - start_dim)))
            low = flat.min(dim=-1).values.reshape(shape)
            high = flat.max(dim=-1).values.reshape(shape)
        span = torch.where(high > low, high - low, torch.ones_like(high))
        return (values - low) / span
    array = np.asarray(values)
    if start_dim is None:
        low, high = array.min(), array.max()
        if high - low <= 0:
            return np.zeros_like(array)
        return (array - low) / (high - low)
    axes = tuple(range(start_dim, array.ndim))
    low = array.min(axis=axes, keepdims=True)
    high = array.max(axis=axes, keepdims=True)
    span = np.where(high > low, high - low, 1)
    return (array - low) / span
