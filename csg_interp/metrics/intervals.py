"""Confidence intervals for comparing two methods scored on the same images.

:func:`paired_bootstrap_interval` -- the percentile bootstrap (Efron & Tibshirani, *An
Introduction to the Bootstrap*, 1993, ch. 13) of ``mean(a) - mean(b)`` where ``a[i]`` and
``b[i]`` are two methods' scores of image ``i``: images are resampled with replacement and both
methods keep their pairing, so the interval reflects the spread of the *difference* over images,
not of each score alone. Used by the localization comparisons (docs/localization.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["paired_bootstrap_interval"]


def paired_bootstrap_interval(
    a: np.ndarray,
    b: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)`` over paired resamples of items.

    Args:
        a, b: (N,) per-item scores of two methods on the same items (bool hits or floats).
        resamples: bootstrap resamples of the N items.
        seed: seed of the resampling (``numpy.random.RandomState``), for reproducible intervals.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``(low, high)`` in the units of ``a`` and ``b`` (multiply hit rates by 100 for points).

    Raises:
        ValueError: ``a`` and ``b`` are not 1-D of the same non-zero length, or ``resamples`` /
            ``confidence`` are out of range.

    Example:
        >>> a = np.array([1, 1, 1, 1], dtype=float)
        >>> b = np.array([0, 0, 0, 0], dtype=float)
        >>> paired_bootstrap_interval(a, b, resamples=50)
        (1.0, 1.0)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"a and b must be 1-D scores of the same items, got shapes {a.shape} and {b.shape}"
        )
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.RandomState(seed)
    index = rng.randint(0, a.size, size=(resamples, a.size))
    diffs = a[index].mean(1) - b[index].mean(1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    return float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100.0 - tail))
