"""Scores over the MI matrix and the gate: MIS, its ceiling, accuracy, agreement, a gate from MI.

Definitions (``docs/method.md`` §5; Liang et al., 2020, Table 1):

* ``MIS = mean_k max_c M[c, k]`` -- how much the best class of each filter tells about it.
* normalised MIS -- the same after :func:`~csg_interp.metrics.normalize_per_filter`.
* ``mi_ceiling = mean_c MI(logit_c ; 1[y == c])`` with the same estimator, split and N: what the
  network's own class evidence reaches, a practical upper bound for MIS on a data set.
* agreement -- the fraction of filters whose gate argmax equals their MI argmax.
* :func:`gate_from_mi` -- a C×K gate for any model (an STD model has none) through the gate's own
  projection, :func:`csg_interp.training.project_gate_`.

The L1-density is :func:`csg_interp.training.l1_density`; it is not redefined here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from csg_interp.training.gate import gate_assignment, project_gate_

from .mutual_information import (
    check_class_labels,
    check_features,
    normalize_per_filter,
    per_class_mutual_information,
)

__all__ = ["mi_score", "mi_ceiling", "accuracy", "gate_mi_agreement", "gate_from_mi"]


def _check_matrix(matrix: np.ndarray | Tensor, name: str = "MI matrix") -> np.ndarray:
    if isinstance(matrix, Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"the {name} must be a non-empty C×K array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"the {name} contains NaN/inf values")
    return array


def mi_score(matrix: np.ndarray | Tensor, normalized: bool = False) -> float:
    """Mutual-information score: the mean over filters of the max over classes of ``M[c, k]``.

    Args:
        matrix: C×K MI matrix (classes × filters).
        normalized: divide each filter's column by its sum over classes first (the reference's
            optional variant).

    Returns:
        MIS in nats (normalised: a number in [1/C, 1], or 0 for all-zero columns).

    Example:
        >>> round(mi_score(np.array([[0.3, 0.0, 0.1], [0.1, 0.2, 0.1]])), 4)
        0.2
        >>> round(mi_score(np.array([[0.3, 0.0, 0.1], [0.1, 0.2, 0.1]]), normalized=True), 4)
        0.75
    """
    array = _check_matrix(matrix)
    if normalized:
        array = normalize_per_filter(array)
    return float(array.max(axis=0).mean())


def mi_ceiling(
    logits: np.ndarray | Tensor,
    labels: np.ndarray | Sequence[int],
    *,
    n_neighbors: int = 3,
    random_state: int = 0,
    n_jobs: int | None = -1,
    backend: str = "threading",
    per_class: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Mean over classes of ``MI(logit_c ; 1[y == c])``, the same estimator as the MI matrix.

    Compute it on the same split and the same N as the MIS it bounds: the k-NN estimator is
    biased by N.

    Args:
        logits: N×C STD-path logits.
        labels: N class indices in [0, C).
        n_neighbors, random_state, n_jobs, backend: as in
            :func:`~csg_interp.metrics.mutual_information_matrix`.
        per_class: also return the C per-class values.

    Returns:
        The ceiling in nats, or ``(ceiling, per_class_values)``. Classes absent from ``labels``
        are left out of the mean.

    Example:
        >>> y = np.repeat([0, 1], 50)
        >>> logits = np.stack([1.0 - y, y], axis=1) + 0.01 * np.random.RandomState(0).randn(100, 2)
        >>> round(mi_ceiling(logits, y, n_jobs=1), 1)  # ≈ H(1/2) = ln 2 = 0.693
        0.7
    """
    if isinstance(logits, Tensor):
        logits = logits.detach().cpu().numpy()
    logits = check_features(logits, "logits")
    labels = check_class_labels(labels, logits.shape[0], n_neighbors)
    if labels.max() >= logits.shape[1]:
        raise ValueError(
            f"label {int(labels.max())} has no logit column: the logits have {logits.shape[1]}"
        )
    present = np.unique(labels)
    tasks = [(logits[:, [c]], labels == c) for c in present]
    values = per_class_mutual_information(tasks, n_neighbors, random_state, n_jobs, backend)
    per_class_values = np.full(logits.shape[1], np.nan)
    per_class_values[present] = [float(v[0]) for v in values]
    ceiling = float(np.nanmean(per_class_values))
    return (ceiling, per_class_values) if per_class else ceiling


def accuracy(logits: np.ndarray | Tensor, labels: np.ndarray | Sequence[int] | Tensor) -> float:
    """Top-1 accuracy of (STD-path) logits.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]]), [0, 1, 1])
        0.6666666666666666
    """
    if isinstance(logits, Tensor):
        logits = logits.detach().cpu().numpy()
    if isinstance(labels, Tensor):
        labels = labels.cpu().numpy()
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"need N×C logits and N labels, got {logits.shape} and {labels.shape}"
        )
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined; pass at least one sample")
    return float((logits.argmax(axis=1) == labels).mean())


def gate_mi_agreement(gate: Tensor | np.ndarray, matrix: np.ndarray | Tensor) -> float:
    """Fraction of filters whose gate argmax class equals their MI argmax class.

    Args:
        gate: C×K gate.
        matrix: C×K MI matrix of the same model.

    Example:
        >>> gate_mi_agreement(np.array([[1.0, 0.2], [0.1, 1.0]]), np.array([[0.3, 0.2], [0.1, 0.1]]))
        0.5
    """
    gate = torch.as_tensor(_check_matrix(gate, "gate"))
    array = _check_matrix(matrix)
    if tuple(gate.shape) != array.shape:
        raise ValueError(f"gate {tuple(gate.shape)} and MI matrix {array.shape} differ in shape")
    by_gate = gate_assignment(gate).numpy()
    by_mi = array.argmax(axis=0)
    return float((by_gate == by_mi).mean())


def gate_from_mi(matrix: np.ndarray | Tensor, projection: str = "max") -> Tensor:
    """A C×K gate in [0, 1] built from an MI matrix, through the gate's own projection.

    The matrix is scaled by its global maximum (a no-op for ``max``, which rescales every filter
    anyway) and passed to :func:`csg_interp.training.project_gate_`: with ``max`` each filter's
    best class gets 1 and the others their MI relative to it; a filter with no information about
    any class is open to all classes. Compute ``matrix`` on a split disjoint from the one the gate
    is then evaluated on (e.g. the validation split), or the gate will have seen the test labels.

    Args:
        matrix: C×K MI matrix (nats, ≥ 0).
        projection: ``"max"`` (default) or ``"clip"``.

    Returns:
        float32 tensor (C, K) in [0, 1].

    Example:
        >>> gate_from_mi(np.array([[0.2, 0.0, 0.0], [0.1, 0.3, 0.0]]))
        tensor([[1.0000, 0.0000, 1.0000],
                [0.5000, 1.0000, 1.0000]])
    """
    array = _check_matrix(matrix)
    if (array < 0).any():
        raise ValueError("an MI matrix has no negative entries; pass the output of "
                         "mutual_information_matrix")
    top = array.max()
    gate = torch.tensor(array / top if top > 0 else array, dtype=torch.float32)
    project_gate_(gate, projection)
    return gate
