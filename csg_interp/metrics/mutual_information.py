"""The filter × class mutual-information matrix of Liang et al. (2020), computed in parallel.

For every class ``c`` the reference code (``hyliang96/CSGCNN``, ``mutualinfo.py``;
``docs/method.md`` §5) calls scikit-learn's k-NN estimator (Kraskov et al., 2004; Ross, 2014)::

    M[c, :] = sklearn.feature_selection.mutual_info_classif(F, y == c, n_neighbors=3,
                                                            random_state=0)

with every other argument at its default (continuous features, nats). ``F`` is the N×K matrix of
globally average-pooled activations of the gated layer (see :mod:`csg_interp.metrics.features`).
:func:`mutual_information_matrix` runs exactly that call, one class per joblib task: every task
seeds its own noise with ``random_state``, so the parallel result equals the serial loop to the
last bit, whatever the backend or the number of workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.utils.parallel import Parallel, delayed  # joblib, passing sklearn config on
from sklearn.feature_selection import mutual_info_classif

from csg_interp.errors import InvalidParameterError
from csg_interp.progress import progress_bar

from .fast_mi import fast_mutual_info_classif, fast_mutual_information_matrix

__all__ = [
    "BACKENDS",
    "ESTIMATORS",
    "check_features",
    "check_class_labels",
    "mutual_information_matrix",
    "per_class_mutual_information",
    "normalize_per_filter",
    "stratified_subset",
]

logger = logging.getLogger(__name__)

#: joblib backends accepted by ``backend=``. ``threading`` is the default: scikit-learn's
#: neighbour searches release the GIL and threads share the features without copying. On an idle
#: 2-core machine both reach the benchmark's target (threads 1.73×, loky 1.88×); under load threads
#: held up better (benchmarks/bench_metrics.py, docs/metrics.md).
BACKENDS: tuple[str, ...] = ("threading", "loky", "sequential")

#: ``sklearn``: the reference call (default); ``sorted``: the optional fast path (fast_mi.py).
ESTIMATORS: tuple[str, ...] = ("sklearn", "sorted")


def check_features(features: np.ndarray, name: str = "features") -> np.ndarray:
    """Validate an N×K feature matrix: 2-D, numeric, finite. Returns it as float64.

    Raises:
        ValueError: with a message that says what is wrong and what to do.
    """
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (N samples, K filters), got shape {array.shape}; "
            "pool feature maps first (csg_interp.metrics.extract_features)"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{name} contain {int(bad.sum())} NaN/inf value(s) in {rows.size} sample(s) "
            f"(first: row {int(rows[0])}); check the model for overflow or drop those samples"
        )
    return array


def check_class_labels(
    labels: np.ndarray | Sequence[int], num_samples: int, n_neighbors: int = 3
) -> np.ndarray:
    """Validate labels for the MI estimator: 1-D integers ≥ 0, one per sample, ≥ 2 classes.

    Args:
        labels: class index per sample.
        num_samples: N, the number of feature rows.
        n_neighbors: the estimator's k; at least ``k + 1`` samples are needed.

    Returns:
        The labels as an int64 array.

    Raises:
        ValueError: for a length mismatch, non-integer or negative labels, fewer than
            ``n_neighbors + 1`` samples, or a single class present.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be a 1-D array (N,), got shape {array.shape}")
    if array.shape[0] != num_samples:
        raise ValueError(
            f"got {array.shape[0]} labels for {num_samples} feature rows; pass one label per sample"
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {array.dtype}")
    if num_samples < n_neighbors + 1:
        raise ValueError(
            f"the k-NN MI estimator needs at least n_neighbors + 1 = {n_neighbors + 1} samples, "
            f"got {num_samples}; use more samples or a smaller n_neighbors"
        )
    array = array.astype(np.int64, copy=False)
    if array.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, got {int(array.min())}")
    present = np.unique(array)
    if present.size < 2:
        raise ValueError(
            f"only one class ({int(present[0])}) is present; the MI of a filter with 'y == c' "
            "needs samples of at least two classes"
        )
    return array


def normalize_per_filter(matrix: np.ndarray) -> np.ndarray:
    """Per-filter normalisation ``M[:, k] / Σ_c M[c, k]`` (``docs/method.md`` §5, off by default).

    A filter whose column sums to 0 stays 0.

    Example:
        >>> normalize_per_filter(np.array([[1.0, 0.0], [3.0, 0.0]]))
        array([[0.25, 0.  ],
               [0.75, 0.  ]])
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=0, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def _resolve_jobs(n_jobs: int | None, tasks: int) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None:
        n_jobs = -1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise InvalidParameterError(
            f"`n_jobs` must be a positive number of workers or -1 for all {cores} cores (-2: all "
            f"but one, joblib's convention), got {n_jobs!r}"
        )
    jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
    return max(1, min(jobs, tasks))


def _class_task(
    columns: np.ndarray, positives: np.ndarray, n_neighbors: int, random_state: int
) -> np.ndarray:
    # Exactly the reference call: every other argument at scikit-learn's default.
    return mutual_info_classif(
        columns, positives, n_neighbors=n_neighbors, random_state=random_state
    )


def per_class_mutual_information(
    tasks: Sequence[tuple[np.ndarray, np.ndarray]],
    n_neighbors: int = 3,
    random_state: int = 0,
    n_jobs: int | None = -1,
    backend: str = "threading",
    progress: bool | None = None,
    description: str = "MI per class",
) -> list[np.ndarray]:
    """Run ``mutual_info_classif(X_c, y_c)`` for each ``(X_c, y_c)`` task, in parallel, in order.

    The building block of :func:`mutual_information_matrix` and
    :func:`~csg_interp.metrics.mi_ceiling`. Each call seeds its own noise, so the result does not
    depend on ``n_jobs`` or ``backend``.

    Args:
        tasks: pairs of a feature matrix (N_c × K_c) and a binary target (N_c,).
        n_neighbors: k of the estimator (the reference uses 3).
        random_state: seed of the estimator's tiny noise (the reference uses 0).
        n_jobs: joblib workers; ``-1`` (default) = all cores, ``1`` = the plain serial loop.
        backend: ``"threading"`` (default), ``"loky"`` (processes) or ``"sequential"``.
        progress: show a tqdm bar over the tasks (``None``: the switch of
            :func:`csg_interp.progress.set_progress`; shown after a second).
        description: the bar's label.

    Returns:
        One array of K_c MI values (nats) per task.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    jobs = 1 if backend == "sequential" else _resolve_jobs(n_jobs, len(tasks))
    run: Callable = delayed(_class_task)
    bar = progress_bar(total=len(tasks), desc=description, unit="class", enabled=progress)
    results: list[np.ndarray] = []
    if jobs == 1:
        for columns, positives in tasks:
            results.append(_class_task(columns, positives, n_neighbors, random_state))
            bar.update()
    else:
        parallel = Parallel(n_jobs=jobs, backend=backend, return_as="generator")
        for row in parallel(run(c, p, n_neighbors, random_state) for c, p in tasks):
            results.append(row)
            bar.update()
    bar.close()
    return results


def _balanced_indices(labels: np.ndarray, cls: int, rng: np.random.RandomState) -> np.ndarray:
    positives = np.flatnonzero(labels == cls)
    negatives = np.flatnonzero(labels != cls)
    take = min(positives.size, negatives.size)
    keep = np.concatenate([rng.choice(positives, take, replace=False) if take < positives.size
                           else positives,
                           rng.choice(negatives, take, replace=False)])
    return np.sort(keep)


def stratified_subset(labels: np.ndarray, max_samples: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-stratified random subset of ``max_samples`` samples.

    scikit-learn's ``train_test_split(stratify=labels)``; without stratification when a class
    has a single sample.

    Example:
        >>> stratified_subset(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 4).size
        4
    """
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    stratify = labels if (counts[counts > 0] >= 2).all() else None
    keep, _ = train_test_split(
        np.arange(labels.size), train_size=max_samples, stratify=stratify, random_state=seed
    )
    return np.sort(keep)


def mutual_information_matrix(
    features: np.ndarray,
    labels: np.ndarray | Sequence[int],
    num_classes: int | None = None,
    *,
    n_neighbors: int = 3,
    random_state: int = 0,
    n_jobs: int | None = -1,
    backend: str = "threading",
    balanced: bool = False,
    normalize: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    estimator: str = "sklearn",
) -> np.ndarray:
    """Mutual information between every filter and every class indicator, C×K, in nats.

    ``M[c, k] = MI(F[:, k] ; 1[y == c])`` by scikit-learn's ``mutual_info_classif`` with
    ``n_neighbors=3, random_state=0`` and its other defaults: exactly the protocol of the paper's
    code (``docs/method.md`` §5). Rows are classes, columns are filters (the paper's orientation).

    Args:
        features: N×K matrix, usually the pooled gated map from
            :func:`~csg_interp.metrics.extract_features` on the test split.
        labels: N class indices.
        num_classes: C; defaults to ``max(labels) + 1``. Classes with no sample get a row of 0.
        n_neighbors: the estimator's k (reference: 3).
        random_state: the estimator's noise seed (reference: 0).
        n_jobs: parallel workers over classes; ``-1`` (default) = all cores, ``1`` = serial.
            The values do not depend on it.
        backend: joblib backend, ``"threading"`` (default), ``"loky"`` (processes) or
            ``"sequential"``.
        balanced: option, off by default: for class ``c`` use all its samples and as many
            negatives drawn at random (seeded by ``seed``), so that ``P(y == c) = 1/2``.
        normalize: option, off by default: divide each filter's column by its sum over classes
            (:func:`normalize_per_filter`).
        max_samples: option, off by default: a stratified random subset of at most this many
            samples (seeded by ``seed``) before anything else; the KSG estimator is biased by N,
            so compare models only at equal N.
        seed: seed of the subsampling options.
        progress: show a progress bar over classes (``None``: the global switch).
        estimator: ``"sklearn"`` (default: the reference call) or ``"sorted"``, an optional fast
            path computing the same estimator by sorting each column once
            (:mod:`csg_interp.metrics.fast_mi`); its values agree with the default up to
            floating-point rounding (checked in the tests and the benchmark), but only the
            default is the paper's protocol to the bit.

    Returns:
        float64 array (C, K).

    Raises:
        ValueError: for NaN/inf features, a single class present, fewer than
            ``n_neighbors + 1`` samples, or a features/labels length mismatch.

    Example:
        >>> rng = np.random.RandomState(0)
        >>> y = np.repeat([0, 1], 100)
        >>> F = np.stack([y + 0.01 * rng.randn(200), rng.randn(200)], axis=1)
        >>> M = mutual_information_matrix(F, y, n_jobs=1)
        >>> M.shape, bool(M[0, 0] > 0.6 > 0.05 > M[0, 1])
        ((2, 2), True)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    features = check_features(features)
    labels = check_class_labels(labels, features.shape[0], n_neighbors)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.max() >= num_classes:
        raise ValueError(f"label {int(labels.max())} is out of range for {num_classes} classes")
    if max_samples is not None:
        if max_samples < n_neighbors + 1:
            raise ValueError(f"max_samples must be at least n_neighbors + 1 = {n_neighbors + 1}")
        if max_samples < labels.size:
            keep = stratified_subset(labels, max_samples, seed)
            features, labels = features[keep], labels[keep]
    present = set(np.unique(labels).tolist())
    missing = [c for c in range(num_classes) if c not in present]
    if missing:
        logger.warning("classes %s have no sample; their MI rows are 0", missing)
    if estimator == "sorted" and not balanced:
        matrix = fast_mutual_information_matrix(
            features, labels, num_classes, n_neighbors, random_state
        )
        return normalize_per_filter(matrix) if normalize else matrix
    rng = np.random.RandomState(seed)
    tasks, rows = [], []
    for cls in range(num_classes):
        if cls not in present:
            continue
        if balanced:
            keep = _balanced_indices(labels, cls, rng)
            tasks.append((features[keep], labels[keep] == cls))
        else:
            tasks.append((features, labels == cls))
        rows.append(cls)
    if estimator == "sorted":
        values = [fast_mutual_info_classif(x, t, n_neighbors, random_state) for x, t in tasks]
    else:
        values = per_class_mutual_information(
            tasks, n_neighbors, random_state, n_jobs, backend, progress, "MI per class"
        )
    matrix = np.zeros((num_classes, features.shape[1]), dtype=np.float64)
    for cls, row in zip(rows, values):
        matrix[cls] = row
    return normalize_per_filter(matrix) if normalize else matrix
