"""Adversarial-sample detector scores and their ROC metrics.

Every score maps a model's outputs on a batch to one number per image; **higher means "more
likely adversarial"**. The scores read only :class:`ModelOutputs` -- the globally average-pooled
gated map f(x) ∈ R^K (post-ReLU, so f ≥ 0) and the logits -- which one forward pass gives.

* :class:`GateConsistencyScore` -- the share of pooled activation mass outside the filters the gate
  gives the *predicted* class ŷ (``docs/method.md`` §6b)::

      s(x) = Σ_k f_k(x) · (1 − G[ŷ, k]) / Σ_k f_k(x)

  A CSG model's learned gate says which filters serve each class; a natural image of class ŷ
  activates mostly those, an image pushed into ŷ by an attack keeps much of its mass on the filters
  of its true class. For an STD model (no gate) build the score from a gate derived from mutual
  information: :meth:`GateConsistencyScore.from_mi`.
* :class:`MaxSoftmaxScore` -- the baseline of Hendrycks & Gimpel (2017): ``1 − max softmax``.
* :class:`MahalanobisScore` -- Lee et al. (2018) on the pooled features: class means and one tied
  covariance fitted on clean images of a held-out split (scikit-learn's ``LedoitWolf`` shrinkage
  estimator), score ``min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c)``. No input pre-processing, one layer only.

:func:`detection_metrics` gives ROC AUC and the TPR at a fixed FPR (default 5 %) with
``sklearn.metrics.roc_auc_score`` / ``roc_curve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from csg_interp.training.gate import check_labels
from csg_interp.training.network import check_images

__all__ = [
    "ModelOutputs",
    "model_outputs",
    "DetectorScore",
    "gate_outside_mass",
    "GateConsistencyScore",
    "MaxSoftmaxScore",
    "MahalanobisScore",
    "LogisticGateScore",
    "detection_metrics",
    "tpr_at_fpr",
]


@dataclass
class ModelOutputs:
    """What the detector scores read from one forward pass.

    Attributes:
        pooled: (N, K) global average of the gated map A(x) (post-ReLU, ≥ 0).
        logits: (N, C) STD-path logits.
    """

    pooled: Tensor
    logits: Tensor

    def __post_init__(self) -> None:
        if self.pooled.dim() != 2 or self.logits.dim() != 2:
            raise ValueError(
                f"pooled must be (N, K) and logits (N, C), got {tuple(self.pooled.shape)} and "
                f"{tuple(self.logits.shape)}"
            )
        if self.pooled.shape[0] != self.logits.shape[0]:
            raise ValueError(
                f"pooled and logits disagree on N: {self.pooled.shape[0]} vs {self.logits.shape[0]}"
            )

    @property
    def predicted(self) -> Tensor:
        """Predicted classes ``argmax logits``, (N,)."""
        return self.logits.argmax(dim=1)

    def __len__(self) -> int:
        return int(self.pooled.shape[0])

    def subset(self, mask: Tensor) -> "ModelOutputs":
        """The rows selected by a bool mask or an index tensor."""
        return ModelOutputs(self.pooled[mask], self.logits[mask])


def model_outputs(net: nn.Module, images: Tensor, batch_size: int = 256) -> ModelOutputs:
    """Pooled gated features and STD logits of a :class:`~csg_interp.training.CSGNet`, batched.

    A thin tensor view of :func:`csg_interp.metrics.extract_outputs` (eval mode, gate bypassed,
    global average pooling of ``net.forward_features(x)``; the net's mode is restored).

    Args:
        net: a CSGNet (anything with ``forward_features`` and ``head``).
        images: float (N, C, H, W) in [0, 1].
        batch_size: images per forward pass.

    Returns:
        :class:`ModelOutputs` on the CPU.
    """
    from csg_interp.metrics import extract_outputs

    check_images(images)
    outputs = extract_outputs(net, images, batch_size=batch_size, progress=None)
    return ModelOutputs(torch.from_numpy(outputs.features), torch.from_numpy(outputs.logits))


class DetectorScore(Protocol):
    """A detector score: ``score(outputs) -> (N,)`` numpy array, higher = more adversarial."""

    name: str

    def score(self, outputs: ModelOutputs) -> np.ndarray: ...


def gate_outside_mass(pooled: Tensor, gate: Tensor, classes: Tensor) -> Tensor:
    """Share of each sample's pooled activation mass outside the gate row of its class.

    ``s_i = Σ_k f_ik (1 − G[c_i, k]) / Σ_k f_ik``; 0 when every filter the sample activates is fully
    open for ``c_i``, 1 when all its mass sits on filters closed for ``c_i``. A sample with no
    activation at all (Σ f = 0) scores 0.

    Args:
        pooled: (N, K) non-negative pooled activations f.
        gate: (C, K) gate with entries in [0, 1].
        classes: (N,) the class whose gate row each sample is compared with (usually the prediction).

    Returns:
        (N,) tensor in [0, 1].

    Raises:
        ValueError: for negative activations (the mass share is undefined), a gate outside [0, 1],
            or mismatched shapes.

    Example:
        >>> f = torch.tensor([[2.0, 1.0, 1.0, 0.0]])
        >>> g = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
        >>> gate_outside_mass(f, g, torch.tensor([0]))
        tensor([0.2500])
    """
    if pooled.dim() != 2:
        raise ValueError(f"pooled activations must be (N, K), got shape {tuple(pooled.shape)}")
    if gate.dim() != 2 or gate.shape[1] != pooled.shape[1]:
        raise ValueError(
            f"the gate must be C×K with K = {pooled.shape[1]} filters, got shape {tuple(gate.shape)}"
        )
    if pooled.numel() and float(pooled.min()) < 0:
        raise ValueError(
            f"activations must be non-negative for a mass share (min {float(pooled.min()):.3g}); "
            "use the post-ReLU gated map (net.features(x)), not a pre-activation or a normalised "
            "feature"
        )
    if gate.numel() and (float(gate.min()) < 0 or float(gate.max()) > 1):
        raise ValueError(
            "gate entries must lie in [0, 1]; project it first "
            "(csg_interp.training.project_gate_) or build it with gate_from_mi"
        )
    classes = check_labels(classes, gate.shape[0], pooled.shape[0])
    pooled = pooled.to(gate.dtype)
    rows = gate.index_select(0, classes.to(gate.device))
    outside = (pooled * (1.0 - rows)).sum(dim=1)
    total = pooled.sum(dim=1)
    return torch.where(total > 0, outside / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)


class GateConsistencyScore:
    """Gate-consistency detector score: pooled mass outside the predicted class's gate row.

    Args:
        gate: (C, K) gate in [0, 1] -- a CSG model's ``net.gate.weight`` or one from
            :meth:`from_mi`.
        name: the label used in tables and plots.

    Example:
        >>> g = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> outputs = ModelOutputs(torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0, 5.0]]))
        >>> GateConsistencyScore(g).score(outputs)  # predicted class 1 keeps filter 1 only
        array([0.75], dtype=float32)
    """

    def __init__(self, gate: Tensor, name: str = "gate") -> None:
        gate = torch.as_tensor(gate).detach().float().cpu()
        if gate.dim() != 2:
            raise ValueError(f"the gate must be a C×K matrix, got shape {tuple(gate.shape)}")
        if float(gate.min()) < 0 or float(gate.max()) > 1:
            raise ValueError(
                "gate entries must lie in [0, 1]; project it first "
                "(csg_interp.training.project_gate_) or build it with gate_from_mi"
            )
        self.gate = gate
        self.name = name

    @classmethod
    def from_net(cls, net: nn.Module, name: str = "gate") -> "GateConsistencyScore":
        """The score with the model's learned gate ``net.gate.weight``.

        Raises:
            ValueError: for a model without a gate (an STD model), pointing to :meth:`from_mi`.
        """
        gate = getattr(net, "gate", None)
        if gate is None:
            raise ValueError(
                "this model has no gate (an STD model); derive one from mutual information on a "
                "held-out split: GateConsistencyScore.from_mi(mutual_information_matrix(features, "
                "labels)), which uses csg_interp.metrics.gate_from_mi"
            )
        return cls(gate.weight, name=name)

    @classmethod
    def from_mi(
        cls, mi_matrix: Tensor | np.ndarray, projection: str = "max", name: str = "mi-gate"
    ) -> "GateConsistencyScore":
        """The score with a gate derived from a C×K mutual-information matrix
        (``csg_interp.metrics.gate_from_mi``) -- for STD models, or to compare with the learned
        gate. Fit the MI matrix on a split disjoint from the one you evaluate on."""
        from csg_interp.metrics import gate_from_mi

        return cls(gate_from_mi(torch.as_tensor(np.asarray(mi_matrix)), projection=projection), name=name)

    def score(self, outputs: ModelOutputs) -> np.ndarray:
        """(N,) outside-mass shares for the predicted classes.

        The mass of a filter is the magnitude ``|f_k|`` of its pooled activation: for post-ReLU
        maps (the paper's CNNs) that is ``f_k`` itself; signed maps (a timm ViT's token channels,
        EfficientNet's SiLU output, docs/models.md) count how strongly each filter is engaged.
        """
        return gate_outside_mass(outputs.pooled.abs(), self.gate, outputs.predicted).numpy()


class MaxSoftmaxScore:
    """Baseline: ``1 − max_c softmax(z)_c`` (Hendrycks & Gimpel, 2017); higher = less confident.

    Example:
        >>> outputs = ModelOutputs(torch.zeros(1, 2), torch.tensor([[0.0, 0.0]]))
        >>> MaxSoftmaxScore().score(outputs)
        array([0.5], dtype=float32)
    """

    name = "max-softmax"

    def score(self, outputs: ModelOutputs) -> np.ndarray:
        return (1.0 - outputs.logits.softmax(dim=1).amax(dim=1)).numpy()


class MahalanobisScore:
    """Baseline: minimum Mahalanobis distance of the pooled features to the class means.

    Lee et al. (2018), "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
    Adversarial Attacks", with one layer and no input pre-processing. Class means μ_c and a tied
    covariance (``sklearn.covariance.LedoitWolf`` on class-centred features) are fitted on *clean*
    images of a split disjoint from the evaluation split.

    Example:
        >>> pooled = torch.tensor([[0.0, 0.0], [0.2, 0.1], [4.0, 4.0], [4.1, 3.8]])
        >>> fit = ModelOutputs(pooled, torch.zeros(4, 2))
        >>> detector = MahalanobisScore().fit(fit, torch.tensor([0, 0, 1, 1]))
        >>> detector.means_.shape
        torch.Size([2, 2])
    """

    name = "mahalanobis"

    def fit(self, outputs: ModelOutputs, labels: Tensor) -> "MahalanobisScore":
        """Fit class means and the tied covariance on clean outputs with their true labels."""
        from sklearn.covariance import LedoitWolf

        num_classes = outputs.logits.shape[1]
        labels = check_labels(labels, num_classes, len(outputs))
        present = torch.unique(labels)
        if present.numel() < num_classes:
            missing = sorted(set(range(num_classes)) - set(present.tolist()))
            raise ValueError(
                f"every class needs fitting samples; classes {missing} have none -- fit on a "
                "larger held-out split"
            )
        features = outputs.pooled.double()
        means = torch.stack([features[labels == c].mean(dim=0) for c in range(num_classes)])
        centred = (features - means[labels]).numpy()
        self.covariance_ = LedoitWolf(assume_centered=True).fit(centred)
        self.means_ = means
        return self

    def score(self, outputs: ModelOutputs) -> np.ndarray:
        if not hasattr(self, "means_"):
            raise ValueError("MahalanobisScore is not fitted; call fit(outputs, labels) on clean data")
        features = outputs.pooled.double().numpy()
        distances = np.stack(
            [self.covariance_.mahalanobis(features - mean) for mean in self.means_.numpy()], axis=1
        )
        return distances.min(axis=1).astype(np.float32)


class LogisticGateScore:
    """Supervised detector: logistic regression on per-class filter statistics of the gate.

    Features of a sample with pooled activations f and predicted class ŷ (2K + 1 values): the
    mass shares inside and outside ŷ's gate row, ``f/Σf ⊙ G[ŷ]`` and ``f/Σf ⊙ (1 − G[ŷ])``, and
    ``log(1 + Σf)``. A scikit-learn ``StandardScaler`` → ``LogisticRegression`` pipeline is fitted
    on clean vs attacked images of a held-out split (the same attack and ε as evaluated), so it
    knows the attack; its score is the predicted probability of "adversarial".

    Args:
        gate: (C, K) gate in [0, 1] (learned, or ``gate_from_mi`` for an STD model).
        name: the label in tables and plots.
        C: inverse regularisation strength of the logistic regression.

    Example:
        >>> gate = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> clean = ModelOutputs(torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 4), torch.eye(2).repeat(4, 1))
        >>> adversarial = ModelOutputs(torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 4),
        ...                            torch.eye(2).repeat(4, 1))
        >>> detector = LogisticGateScore(gate).fit(clean, adversarial)
        >>> bool((detector.score(adversarial) > detector.score(clean)).all())
        True
    """

    def __init__(self, gate: Tensor, name: str = "gate-logistic", C: float = 1.0) -> None:
        self.gate = GateConsistencyScore(gate).gate
        self.name = name
        self.C = C

    def features(self, outputs: ModelOutputs) -> np.ndarray:
        """The (N, 2K + 1) feature matrix described in the class docstring."""
        pooled = outputs.pooled.float()
        if pooled.numel() and float(pooled.min()) < 0:
            raise ValueError("activations must be non-negative for mass shares; use the post-ReLU map")
        if pooled.shape[1] != self.gate.shape[1]:
            raise ValueError(
                f"the gate has {self.gate.shape[1]} filters but the features have {pooled.shape[1]}"
            )
        total = pooled.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, pooled / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)
        rows = self.gate.index_select(0, outputs.predicted)
        return torch.cat([share * rows, share * (1.0 - rows), torch.log1p(total)], dim=1).numpy()

    def fit(self, clean: ModelOutputs, adversarial: ModelOutputs) -> "LogisticGateScore":
        """Fit on clean (label 0) and adversarial (label 1) outputs of a held-out split."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(clean) == 0 or len(adversarial) == 0:
            raise ValueError(
                f"fitting needs clean and adversarial samples, got {len(clean)} and "
                f"{len(adversarial)} (did any attack on the fitting split succeed?)"
            )
        x = np.concatenate([self.features(clean), self.features(adversarial)])
        y = np.concatenate([np.zeros(len(clean)), np.ones(len(adversarial))])
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
        self.model_.fit(x, y)
        return self

    def score(self, outputs: ModelOutputs) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise ValueError(
                "LogisticGateScore is not fitted; call fit(clean, adversarial) on attacked images "
                "of a held-out split"
            )
        return self.model_.predict_proba(self.features(outputs))[:, 1].astype(np.float32)


def tpr_at_fpr(y_true: np.ndarray, y_score: np.ndarray, max_fpr: float = 0.05) -> float:
    """True-positive rate at the strictest threshold whose false-positive rate is ≤ ``max_fpr``.

    Read off ``sklearn.metrics.roc_curve`` (no interpolation: the best operating point that keeps
    the FPR within the budget).

    Example:
        >>> tpr_at_fpr(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
        1.0
    """
    from sklearn.metrics import roc_curve

    if not 0.0 <= max_fpr <= 1.0:
        raise ValueError(f"max_fpr must lie in [0, 1], got {max_fpr}")
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def detection_metrics(
    clean_scores: np.ndarray, adversarial_scores: np.ndarray, max_fpr: float = 0.05
) -> dict[str, float]:
    """ROC AUC and TPR at ``max_fpr`` FPR of a score separating adversarial (positive) from clean.

    Args:
        clean_scores: scores of natural images (negatives).
        adversarial_scores: scores of attacked images (positives).
        max_fpr: the FPR budget for the TPR (default 5 %).

    Returns:
        ``{"auc", "tpr_at_fpr", "max_fpr", "n_clean", "n_adversarial"}``.

    Raises:
        ValueError: if either side is empty (AUC is undefined).

    Example:
        >>> detection_metrics(np.array([0.1, 0.2]), np.array([0.8, 0.9]))["auc"]
        1.0
    """
    from sklearn.metrics import roc_auc_score

    clean = np.asarray(clean_scores, dtype=np.float64).ravel()
    adversarial = np.asarray(adversarial_scores, dtype=np.float64).ravel()
    if clean.size == 0 or adversarial.size == 0:
        raise ValueError(
            f"ROC AUC needs clean and adversarial samples, got {clean.size} clean and "
            f"{adversarial.size} adversarial (did any attack succeed? try a larger eps)"
        )
    y_true = np.concatenate([np.zeros(clean.size), np.ones(adversarial.size)])
    y_score = np.concatenate([clean, adversarial])
    return {
        "auc": float(roc_auc_score(y_true, y_score)),
        "tpr_at_fpr": tpr_at_fpr(y_true, y_score, max_fpr),
        "max_fpr": float(max_fpr),
        "n_clean": int(clean.size),
        "n_adversarial": int(adversarial.size),
    }
