"""The Class-Specific Gate (CSG): one learnable C×K matrix in [0, 1].

Row ``c`` belongs to class ``c`` and column ``k`` to filter ``k`` of the gated layer (the
paper's orientation; the reference code stores the transpose). During CSG-path training the
activation map of filter ``k`` of a sample of class ``y`` is multiplied by ``G[y, k]``, so a
filter only passes for the classes its column keeps open.

Everything the rest of the package needs about the gate lives here, once:

* :func:`project_gate_` -- the approximate projected-gradient step (Liang et al., 2020, and the
  reference code ``hyliang96/CSGCNN``): ``max`` divides every filter's column by its maximum over
  classes and clips to [0, 1]; ``clip`` only clips.
* :func:`l1_density` -- ``‖G‖₁ / (C·K)``, the mean entry.
* :func:`sparsity_hinge` -- ``max(0, ‖G‖₁ − τ·C·K)`` on the raw (un-normalised) sum.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "ClassSpecificGate",
    "Projection",
    "PROJECTIONS",
    "project_gate_",
    "l1_density",
    "sparsity_hinge",
    "gate_assignment",
    "class_filters",
    "rank_filters",
]

logger = logging.getLogger(__name__)

Projection = Literal["max", "clip"]
PROJECTIONS: tuple[str, ...] = ("max", "clip")

_ZERO_COLUMN_EPS = 1e-12


def _check_projection(projection: str) -> None:
    if projection not in PROJECTIONS:
        raise ValueError(
            f"unknown projection {projection!r}; use one of {', '.join(PROJECTIONS)} "
            "('max': per-filter max normalisation then clip, as the paper's code; "
            "'clip': clip to [0, 1] only)"
        )


@torch.no_grad()
def project_gate_(gate: Tensor, projection: str = "max") -> int:
    """Project a C×K gate matrix onto the feasible set, in place.

    ``max`` (the reference code's step, ``docs/method.md`` §3): for every filter ``k`` divide the
    column ``G[:, k]`` by its maximum over classes, then clip every entry to [0, 1]. Every filter
    keeps at least one class with gate exactly 1. A column whose maximum is not positive (all entries
    ≤ 0, which the reference does not guard against) is reset to all ones -- the filter passes for
    every class again -- and a warning is logged.

    ``clip``: clip to [0, 1] only. This is the only projection that lets the L1-density fall below
    ``1/C``.

    Args:
        gate: tensor of shape (C, K), modified in place.
        projection: ``"max"`` or ``"clip"``.

    Returns:
        The number of columns reset to ones (always 0 for ``clip``).

    Example:
        >>> g = torch.tensor([[0.2, -0.1], [0.4, -0.3]])
        >>> project_gate_(g)
        1
        >>> g
        tensor([[0.5000, 1.0000],
                [1.0000, 1.0000]])
    """
    _check_projection(projection)
    if gate.dim() != 2:
        raise ValueError(f"gate must be a C×K matrix, got shape {tuple(gate.shape)}")
    reset = 0
    if projection == "max":
        column_max = gate.amax(dim=0)
        dead = column_max <= _ZERO_COLUMN_EPS
        reset = int(dead.sum())
        if reset:
            logger.warning(
                "gate projection: %d filter column(s) had no positive entry and were reset to ones",
                reset,
            )
        safe_max = torch.where(dead, torch.ones_like(column_max), column_max)
        gate.div_(safe_max)
        gate[:, dead] = 1.0
    gate.clamp_(0.0, 1.0)
    return reset


def l1_density(gate: Tensor) -> Tensor:
    """L1-density of a gate: ``‖G‖₁ / (C·K)``, the mean absolute entry (``docs/method.md`` §3).

    Args:
        gate: tensor of shape (C, K).

    Returns:
        A 0-d tensor. 1.0 for an all-pass gate; at least ``1/C`` after the ``max`` projection.

    Example:
        >>> l1_density(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor(0.5000)
    """
    return gate.abs().mean()


def sparsity_hinge(gate: Tensor, tau: float) -> Tensor:
    """Hinge sparsity penalty ``max(0, ‖G‖₁ − τ·C·K)`` on the raw L1 sum (``docs/method.md`` §2).

    Multiply by λ for the loss. It is zero once the L1-density is at most ``tau``.

    Args:
        gate: tensor of shape (C, K).
        tau: density bound in [0, 1].

    Returns:
        A 0-d tensor, differentiable with respect to ``gate``.

    Example:
        >>> round(sparsity_hinge(torch.full((6, 2048), 0.5), tau=0.2).item(), 1)
        3686.4
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau is a density bound and must lie in [0, 1], got {tau}")
    num_classes, num_filters = gate.shape
    return torch.clamp(gate.abs().sum() - tau * num_classes * num_filters, min=0.0)


def gate_assignment(gate: Tensor) -> Tensor:
    """Filter → class assignment: ``argmax_c G[c, k]`` for every filter ``k`` (ties: lowest c).

    Args:
        gate: tensor of shape (C, K).

    Returns:
        Long tensor of shape (K,).
    """
    return gate.argmax(dim=0)


def rank_filters(scores: Tensor) -> Tensor:
    """Filter indices by decreasing score along the last dimension, ties to the lower index.

    The one ranking of filters: a class's filters (:func:`class_filters`), the ``"top_filters"``
    attribution mode and an explanation's fired filters.

    Args:
        scores: (..., K) scores, e.g. a gate row or
            :meth:`~csg_interp.attribution.CSGAttribution.filter_scores`.

    Returns:
        Long tensor of the same shape: a permutation of ``range(K)`` per row, best first.
    """
    return torch.argsort(scores, dim=-1, descending=True, stable=True)


def class_filters(matrix: Tensor, cls: int, min_value: float | None = None) -> Tensor:
    """The filters that serve class ``cls`` in a C×K class × filter matrix, strongest first.

    What :meth:`ClassSpecificGate.filters_of`, the filter atlas and its page call.

    Args:
        matrix: a (C, K) gate or mutual-information matrix.
        cls: the class (row of ``matrix``).
        min_value: keep the filters with ``matrix[cls, k] >= min_value``; ``None`` keeps the
            filters assigned to ``cls`` (:func:`gate_assignment`: ``argmax_c``, ties to the
            lowest class).

    Returns:
        Long tensor of filter indices by decreasing ``matrix[cls, k]``, ties to the lower index.

    Example:
        >>> m = torch.tensor([[0.9, 0.2, 0.6, 0.6], [0.1, 0.8, 0.7, 0.3]])
        >>> class_filters(m, 0).tolist(), class_filters(m, 1, min_value=0.5).tolist()
        ([0, 3], [1, 2])
    """
    row = matrix[cls]
    if min_value is None:
        keep = torch.nonzero(gate_assignment(matrix) == cls).flatten()
    else:
        keep = torch.nonzero(row >= min_value).flatten()
    return keep[rank_filters(row[keep])]


class ClassSpecificGate(nn.Module):
    """A learnable class × filter gate ``G ∈ [0, 1]^{C×K}``.

    Args:
        num_classes: C, the number of classes (rows).
        num_filters: K, the number of channels of the gated layer (columns).
        init: initial value of every entry (the reference uses 0.5; after the first ``max``
            projection every column becomes all ones).
        projection: ``"max"`` (default, the reference's per-filter max normalisation) or
            ``"clip"``.

    Example:
        >>> gate = ClassSpecificGate(num_classes=3, num_filters=4)
        >>> gate.weight.shape
        torch.Size([3, 4])
        >>> a = torch.ones(2, 4, 5, 5)
        >>> gate(a, torch.tensor([0, 2])).shape
        torch.Size([2, 4, 5, 5])
    """

    def __init__(
        self,
        num_classes: int,
        num_filters: int,
        init: float = 0.5,
        projection: str = "max",
    ) -> None:
        super().__init__()
        if num_classes < 1 or num_filters < 1:
            raise ValueError(
                f"a gate needs at least one class and one filter, got {num_classes}×{num_filters}"
            )
        if not 0.0 <= init <= 1.0:
            raise ValueError(f"init must lie in [0, 1], got {init}")
        _check_projection(projection)
        self.num_classes = int(num_classes)
        self.num_filters = int(num_filters)
        self.projection = projection
        self.weight = nn.Parameter(torch.full((num_classes, num_filters), float(init)))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_filters={self.num_filters}, "
            f"projection={self.projection!r}"
        )

    def forward(self, activations: Tensor, labels: Tensor) -> Tensor:
        """Gate a batch of activation maps by each sample's class row.

        ``out[i, k] = G[labels[i], k] · activations[i, k]``, one vectorised gather-multiply.

        Args:
            activations: tensor (N, K, ...) -- usually (N, K, H, W); a pooled (N, K) also works.
            labels: long tensor (N,) with values in [0, C).

        Returns:
            Tensor of the same shape as ``activations``.
        """
        if activations.dim() < 2 or activations.shape[1] != self.num_filters:
            raise ValueError(
                f"the gate has {self.num_filters} filters but the activations have shape "
                f"{tuple(activations.shape)}; expected (N, {self.num_filters}, ...)"
            )
        labels = check_labels(labels, self.num_classes, activations.shape[0])
        rows = self.weight.index_select(0, labels.to(self.weight.device))
        return activations * rows.view(*rows.shape, *([1] * (activations.dim() - 2)))

    @torch.no_grad()
    def project_(self) -> int:
        """Apply this gate's projection in place; returns the number of reset columns."""
        return project_gate_(self.weight.data, self.projection)

    def density(self) -> Tensor:
        """L1-density ``‖G‖₁ / (C·K)`` (see :func:`l1_density`)."""
        return l1_density(self.weight)

    def sparsity_penalty(self, tau: float) -> Tensor:
        """``max(0, ‖G‖₁ − τ·C·K)`` (see :func:`sparsity_hinge`); multiply by λ for the loss."""
        return sparsity_hinge(self.weight, tau)

    def assignment(self) -> Tensor:
        """Filter → class: ``argmax_c G[c, k]``, long tensor (K,)."""
        return gate_assignment(self.weight.detach())

    def filters_of(self, cls: int, threshold: float = 0.5) -> Tensor:
        """Indices of the filters whose gate for class ``cls`` is at least ``threshold``.

        Sorted by decreasing gate value.
        """
        if not 0 <= cls < self.num_classes:
            raise ValueError(f"class {cls} is out of range [0, {self.num_classes})")
        return class_filters(self.weight.detach(), cls, min_value=threshold)


def check_labels(labels: Tensor, num_classes: int, batch_size: int | None = None) -> Tensor:
    """Validate class labels: an integer tensor (N,) with values in [0, num_classes).

    Args:
        labels: the labels.
        num_classes: the number of classes C.
        batch_size: if given, the expected N.

    Returns:
        ``labels`` as a long tensor.

    Raises:
        ValueError: with a message that says what is wrong.
    """
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor (N,), got shape {tuple(labels.shape)}")
    if batch_size is not None and labels.shape[0] != batch_size:
        raise ValueError(f"got {labels.shape[0]} labels for a batch of {batch_size}")
    if labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = high if high >= num_classes else low
            raise ValueError(
                f"label {bad} is out of range for {num_classes} classes (valid: 0..{num_classes - 1})"
            )
    return labels.long()
