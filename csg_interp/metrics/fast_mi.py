"""An optional fast path for the MI matrix: the same estimator, computed by sorting (never default).

scikit-learn's ``mutual_info_classif`` (continuous feature, discrete target) is the estimator of
Ross (2014, PLoS ONE 9(2)): for every sample, the distance ``r`` to its k-th nearest neighbour among
the samples of its own label, then the number ``m`` of samples of any label within ``r``;
``MI = ψ(N) + ⟨ψ(k)⟩ − ⟨ψ(N_label)⟩ − ⟨ψ(m)⟩``. It builds two neighbour indices and a KD-tree per
(class, filter) pair. For a single feature both searches are one-dimensional, so here each column
is sorted **once** and shared by all classes: the k nearest same-label neighbours of a point lie
among its k left and k right same-label neighbours in sorted order, and ``m`` is two
``searchsorted`` calls.

The preprocessing is scikit-learn's own (``sklearn.preprocessing.scale`` without centring, then
``1e-10 · max(1, mean|x|)`` Gaussian noise from ``RandomState(random_state)``), so the inputs are
the same numbers. The values agree with scikit-learn's up to floating-point rounding at the
radius boundary (|a − b| here against the tree's Euclidean distance); the test suite and
``benchmarks/bench_metrics.py`` measure the agreement (max absolute difference, Spearman rank
correlation). The default stays the reference call.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma
from sklearn.preprocessing import scale

__all__ = [
    "prepare_features",
    "mi_continuous_binary",
    "fast_mutual_info_classif",
    "fast_mutual_information_matrix",
]


def prepare_features(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    """Scale to unit variance (no centring) and add scikit-learn's tiny noise, as it does."""
    x = scale(np.asarray(features, dtype=np.float64), with_mean=False, copy=True)
    rng = np.random.RandomState(random_state)
    means = np.maximum(1, np.mean(np.abs(x), axis=0))
    x += 1e-10 * means * rng.standard_normal(size=x.shape)
    return x


def _kth_neighbour_distance(values: np.ndarray, k: int) -> np.ndarray:
    """Distance of each sorted value to its k-th nearest other value (1-D, ``values`` sorted)."""
    n = values.size
    candidates = np.full((n, 2 * k), np.inf)
    for offset in range(1, k + 1):
        gap = values[offset:] - values[:-offset]
        candidates[offset:, k - offset] = gap  # the neighbour `offset` places to the left
        candidates[:-offset, k + offset - 1] = gap  # ... and to the right
    return np.partition(candidates, k - 1, axis=1)[:, k - 1]


def _count_within(values: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Number of sorted ``values`` within ``radius[i]`` of ``values[i]`` (itself included).

    ``searchsorted`` on ``values ± radius`` gives the window; the sum ``values + radius`` is
    rounded at the scale of the values, far coarser than a tiny radius, so the window's edges are
    then corrected with exact differences ``|values[j] − values[i]|`` (what a tree computes).
    """
    n = values.size
    position = np.arange(n)
    high = np.searchsorted(values, values + radius, side="right")  # exclusive
    low = np.searchsorted(values, values - radius, side="left")
    while True:  # a few passes: each moves an edge by one where rounding put it wrong
        shrink_high = (high - 1 > position) & (values[np.maximum(high - 1, 0)] - values > radius)
        grow_high = (high < n) & (values[np.minimum(high, n - 1)] - values <= radius)
        shrink_low = (low < position) & (values - values[np.minimum(low, n - 1)] > radius)
        grow_low = (low > 0) & (values - values[np.maximum(low - 1, 0)] <= radius)
        if not (shrink_high.any() or grow_high.any() or shrink_low.any() or grow_low.any()):
            return high - low
        high = high - shrink_high + grow_high
        low = low + shrink_low - grow_low


def mi_continuous_binary(
    sorted_values: np.ndarray, sorted_target: np.ndarray, n_neighbors: int = 3
) -> float:
    """Ross's estimator for one sorted feature column and a binary target in the same order."""
    n = sorted_values.size
    radius = np.empty(n)
    k_all = np.empty(n)
    counts = np.empty(n)
    for label in (False, True):
        index = np.flatnonzero(sorted_target == label)
        counts[index] = index.size
        if index.size > 1:
            k = min(n_neighbors, index.size - 1)
            radius[index] = np.nextafter(_kth_neighbour_distance(sorted_values[index], k), 0)
            k_all[index] = k
    keep = counts > 1
    values, radius = sorted_values[keep], radius[keep]
    within = _count_within(values, radius)
    mi = (
        digamma(int(keep.sum()))
        + np.mean(digamma(k_all[keep]))
        - np.mean(digamma(counts[keep]))
        - np.mean(digamma(within))
    )
    return max(0.0, float(mi))


def fast_mutual_info_classif(
    features: np.ndarray, target: np.ndarray, n_neighbors: int = 3, random_state: int = 0
) -> np.ndarray:
    """Sorted-path counterpart of ``mutual_info_classif(features, target)`` for a binary target."""
    x = prepare_features(features, random_state)
    target = np.asarray(target, dtype=bool)
    values = np.empty(x.shape[1])
    for k in range(x.shape[1]):
        order = np.argsort(x[:, k], kind="stable")
        values[k] = mi_continuous_binary(x[order, k], target[order], n_neighbors)
    return values


def fast_mutual_information_matrix(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    n_neighbors: int = 3,
    random_state: int = 0,
) -> np.ndarray:
    """C×K MI matrix by sorting (inputs validated by the caller). Classes with no sample: 0."""
    x = prepare_features(features, random_state)
    labels = np.asarray(labels)
    matrix = np.zeros((num_classes, x.shape[1]))
    present = [c for c in range(num_classes) if np.any(labels == c)]
    for k in range(x.shape[1]):
        order = np.argsort(x[:, k], kind="stable")
        column, sorted_labels = x[order, k], labels[order]
        for c in present:
            matrix[c, k] = mi_continuous_binary(column, sorted_labels == c, n_neighbors)
    return matrix
