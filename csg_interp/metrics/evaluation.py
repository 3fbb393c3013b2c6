"""Every entanglement figure of one network (Table 1 of Liang et al., 2020) in one call.

:func:`evaluate_network` → a JSON-ready dict (accuracy, MIS, normalised MIS, ceiling,
L1-density, agreement, filters per class, the MI matrix); :func:`compare_metrics` → the CSG-vs-STD
figures (ratio, gap closed, accuracy difference). ``csg-interp evaluate`` / ``compare`` and the
experiment sweep (``experiments/sweep.py``) are thin shells over these.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from csg_interp.training.gate import l1_density

from .features import extract_outputs
from .mutual_information import mutual_information_matrix, stratified_subset
from .scores import accuracy, gate_mi_agreement, mi_ceiling, mi_score

__all__ = ["METRICS_SCHEMA", "evaluate_network", "compare_metrics", "summarize", "SUMMARY_KEYS"]

#: Version tag of ``metrics.json``; bump it when a field changes meaning.
METRICS_SCHEMA = "csg_interp.metrics/1"

#: The scalar figures ``compare`` averages over seeds.
SUMMARY_KEYS: tuple[str, ...] = (
    "accuracy", "mis", "mis_normalized", "mi_ceiling", "l1_density", "gate_mi_agreement",
)  # fmt: skip


def evaluate_network(
    net: nn.Module,
    data: Any,
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int = 256,
    device: str | None = None,
    max_samples: int | None = None,
    n_jobs: int | None = -1,
    backend: str = "threading",
    n_neighbors: int = 3,
    random_state: int = 0,
    progress: bool = True,
    estimator: str = "sklearn",
) -> dict[str, Any]:
    """Accuracy, MIS (raw and per-filter normalised), ceiling, L1-density and agreement.

    The paper's protocol (``docs/method.md`` §5): pooled gated map of the eval-mode network, gate
    bypassed, on ``data`` (usually the test split), MI by ``mutual_info_classif(n_neighbors=3,
    random_state=0)`` per class.

    Args:
        net: a :class:`~csg_interp.training.CSGNet` (with or without gate).
        data: the split, e.g. ``bundle.test`` (anything :func:`extract_outputs` reads, with labels).
        class_names: C names for the per-class fields (default: indices).
        batch_size, device: of the forward passes.
        max_samples: a stratified subset of at most this many samples for the MI figures
            (accuracy always uses all of ``data``). Compare models only at equal N.
        n_jobs, backend: parallelism over classes (values do not depend on it).
        n_neighbors, random_state: the estimator's settings (reference: 3 and 0).
        progress: progress bars.
        estimator: the MI matrix's path, ``"sklearn"`` (default, the reference call) or the
            optional ``"sorted"`` (same estimator, equal up to rounding; the ceiling always uses
            the reference call).

    Returns:
        A dict with ``n``, ``n_mi``, ``accuracy``, ``mis``, ``mis_normalized``, ``mi_ceiling``,
        ``mi_ceiling_per_class``, ``l1_density`` (``None`` without gate), ``gate_mi_agreement``
        (``None`` without gate), ``filters_per_class_mi``, ``filters_per_class_gate``,
        ``mi_matrix`` (C×K list), ``seconds``.
    """
    start = time.perf_counter()
    outputs = extract_outputs(net, data, batch_size=batch_size, device=device, progress=progress)
    if outputs.labels is None:
        raise ValueError("evaluation needs labels: pass (images, labels) or a labelled Dataset")
    num_classes = outputs.logits.shape[1]
    names = [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
    features, logits, labels = outputs.features, outputs.logits, outputs.labels
    acc = accuracy(logits, labels)
    if max_samples is not None and max_samples < labels.size:
        keep = stratified_subset(labels, max_samples, seed=0)
        features, logits, labels = features[keep], logits[keep], labels[keep]
    options = dict(n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs, backend=backend)
    matrix = mutual_information_matrix(
        features, labels, num_classes, progress=progress, estimator=estimator, **options
    )
    ceiling, ceiling_per_class = mi_ceiling(logits, labels, per_class=True, **options)
    gate = getattr(net, "gate", None)
    result: dict[str, Any] = {
        "schema": METRICS_SCHEMA,
        "kind": "csg" if gate is not None else "std",
        "n": int(outputs.labels.size),
        "n_mi": int(labels.size),
        "num_classes": num_classes,
        "num_filters": int(features.shape[1]),
        "class_names": names,
        "estimator": {"name": "sklearn.feature_selection.mutual_info_classif",
                      "path": estimator, "n_neighbors": n_neighbors,
                      "random_state": random_state},
        "accuracy": acc,
        "mis": mi_score(matrix),
        "mis_normalized": mi_score(matrix, normalized=True),
        "mi_ceiling": ceiling,
        "mi_ceiling_per_class": [None if np.isnan(v) else float(v) for v in ceiling_per_class],
        "l1_density": None,
        "gate_mi_agreement": None,
        "filters_per_class_mi": np.bincount(matrix.argmax(axis=0), minlength=num_classes).tolist(),
        "filters_per_class_gate": None,
    }  # fmt: skip
    if gate is not None:
        weight = gate.weight.detach().cpu()
        result["l1_density"] = float(l1_density(weight))
        result["gate_mi_agreement"] = gate_mi_agreement(weight, matrix)
        result["filters_per_class_gate"] = np.bincount(
            weight.argmax(dim=0).numpy(), minlength=num_classes
        ).tolist()
    result["mi_matrix"] = np.round(matrix, 8).tolist()
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def compare_metrics(csg: dict[str, Any], std: dict[str, Any]) -> dict[str, Any]:
    """CSG-vs-STD figures from two :func:`evaluate_network` results (or their means).

    * ``mis_ratio`` = MIS_CSG / MIS_STD (the paper's headline);
    * ``gap_closed`` = (MIS_CSG − MIS_STD) / (ceiling_STD − MIS_STD): the share of the distance to
      the STD network's own logit ceiling that CSG training closes;
    * ``delta_accuracy_points`` = 100 · (acc_CSG − acc_STD).

    Raises:
        ValueError: if the two were measured on different numbers of samples (the estimator is
            biased by N, so MIS values are comparable only at equal N).

    Example:
        >>> compare_metrics({"mis": 0.22, "accuracy": 0.90, "n_mi": 10},
        ...                 {"mis": 0.18, "accuracy": 0.905, "mi_ceiling": 0.26, "n_mi": 10})
        {'mis_ratio': 1.2222, 'gap_closed': 0.5, 'delta_accuracy_points': -0.5}
    """
    if csg.get("n_mi") != std.get("n_mi"):
        raise ValueError(
            f"the MI figures were measured on {csg.get('n_mi')} and {std.get('n_mi')} samples; "
            "evaluate both on the same split and max_samples"
        )
    gap = std["mi_ceiling"] - std["mis"]
    return {
        "mis_ratio": round(csg["mis"] / std["mis"], 4) if std["mis"] > 0 else None,
        "gap_closed": round((csg["mis"] - std["mis"]) / gap, 4) if gap > 0 else None,
        "delta_accuracy_points": round(100.0 * (csg["accuracy"] - std["accuracy"]), 4),
    }


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample standard deviation and values of every :data:`SUMMARY_KEYS` figure.

    Keys whose value is ``None`` in any result (e.g. the density of an STD model) are skipped.

    Example:
        >>> summarize([{"mis": 0.2, "n_mi": 5}, {"mis": 0.3, "n_mi": 5}])["mis"]["mean"]
        0.25
    """
    if not results:
        raise ValueError("nothing to summarise: pass at least one result")
    summary: dict[str, Any] = {"runs": len(results), "n_mi": results[0].get("n_mi")}
    for key in SUMMARY_KEYS:
        values = [r.get(key) for r in results]
        if any(v is None for v in values):
            continue
        array = np.asarray(values, dtype=float)
        summary[key] = {
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "values": [float(v) for v in array],
        }
    return summary
