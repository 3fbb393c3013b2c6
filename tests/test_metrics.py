"""Entanglement metrics: MI matrix, MIS, ceiling, gate from MI, agreement, filter table, features."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.feature_selection import mutual_info_classif
from torch import nn

from csg_interp.metrics import (
    accuracy,
    extract_features,
    extract_outputs,
    filter_table,
    gate_from_mi,
    gate_mi_agreement,
    mi_ceiling,
    mi_score,
    mutual_information_matrix,
)
from csg_interp.training import CSGNet, ClassSpecificGate, GAPLinearHead, l1_density


def binary_entropy(p: float) -> float:
    """H(p) in nats."""
    return float(-p * np.log(p) - (1 - p) * np.log(1 - p))


@pytest.fixture
def labels_and_features() -> tuple[np.ndarray, np.ndarray]:
    """1200 samples, 3 classes of unequal size; filter k = 1[y == k] for k < 3, then 2 noise."""
    rng = np.random.RandomState(0)
    labels = np.repeat([0, 1, 2], [600, 400, 200])
    rng.shuffle(labels)
    indicators = (labels[:, None] == np.arange(3)[None, :]).astype(float)
    noise = rng.rand(labels.size, 2)
    return labels, np.concatenate([indicators, noise], axis=1)


# ----------------------------------------------------------------------------- MI matrix
def test_indicator_feature_scores_binary_entropy_and_noise_scores_zero(labels_and_features):
    labels, features = labels_and_features
    matrix = mutual_information_matrix(features, labels, n_jobs=1)
    assert matrix.shape == (3, 5)
    for c, p in enumerate([0.5, 1 / 3, 1 / 6]):
        assert matrix[c, c] == pytest.approx(binary_entropy(p), rel=0.05)
    # A random filter carries no information: its MI, averaged over the classes, is < 0.02
    # (single values scatter by the estimator's variance at this N, up to ~0.03).
    assert (matrix[:, 3:].mean(axis=0) < 0.02).all()
    assert (matrix[:, 3:] < 0.04).all()


def test_matrix_rows_are_the_reference_call(labels_and_features):
    labels, features = labels_and_features
    matrix = mutual_information_matrix(features, labels, n_jobs=1)
    for c in range(3):
        expected = mutual_info_classif(features, labels == c, n_neighbors=3, random_state=0)
        np.testing.assert_array_equal(matrix[c], expected)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_parallel_equals_serial_exactly(labels_and_features, backend):
    labels, features = labels_and_features
    serial = mutual_information_matrix(features, labels, n_jobs=1)
    parallel = mutual_information_matrix(features, labels, n_jobs=2, backend=backend)
    np.testing.assert_array_equal(parallel, serial)


def test_absent_class_gets_a_zero_row(labels_and_features):
    labels, features = labels_and_features
    matrix = mutual_information_matrix(features, labels, num_classes=4, n_jobs=1)
    assert matrix.shape == (4, 5)
    np.testing.assert_array_equal(matrix[3], 0.0)
    np.testing.assert_array_equal(matrix[:3], mutual_information_matrix(features, labels, n_jobs=1))


def test_balanced_option_makes_every_indicator_worth_ln2(labels_and_features):
    labels, features = labels_and_features
    matrix = mutual_information_matrix(features, labels, n_jobs=1, balanced=True)
    for c in range(3):
        assert matrix[c, c] == pytest.approx(np.log(2), rel=0.05)


def test_normalize_option_makes_columns_sum_to_one(labels_and_features):
    labels, features = labels_and_features
    raw = mutual_information_matrix(features, labels, n_jobs=1)
    normalized = mutual_information_matrix(features, labels, n_jobs=1, normalize=True)
    np.testing.assert_allclose(normalized, raw / raw.sum(axis=0, keepdims=True))


def test_max_samples_option_caps_n_and_keeps_class_proportions(labels_and_features):
    labels, features = labels_and_features
    capped = mutual_information_matrix(features, labels, n_jobs=1, max_samples=600)
    assert capped[0, 0] == pytest.approx(binary_entropy(0.5), rel=0.05)
    assert capped[2, 2] == pytest.approx(binary_entropy(1 / 6), rel=0.05)
    assert not np.array_equal(capped, mutual_information_matrix(features, labels, n_jobs=1))
    uncapped = mutual_information_matrix(features, labels, n_jobs=1, max_samples=10_000)
    np.testing.assert_array_equal(uncapped, mutual_information_matrix(features, labels, n_jobs=1))


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.array([[0.0], [np.nan], [1.0], [2.0]]), [0, 1, 0, 1], "NaN/inf"),
        (np.array([[0.0], [np.inf], [1.0], [2.0]]), [0, 1, 0, 1], "NaN/inf"),
        (np.arange(8.0).reshape(8, 1), [2] * 8, "only one class"),
        (np.arange(3.0).reshape(3, 1), [0, 1, 0], "at least n_neighbors"),
        (np.arange(8.0).reshape(8, 1), [0, 1] * 3, "6 labels for 8"),
        (np.arange(8.0), [0, 1] * 4, "2-D array"),
        (np.arange(8.0).reshape(8, 1), [0.0, 1.0] * 4, "integer class"),
    ],
)
def test_bad_input_is_rejected(features, labels, message):
    with pytest.raises(ValueError, match=message):
        mutual_information_matrix(features, labels, n_jobs=1)


def test_unknown_backend_is_rejected(labels_and_features):
    labels, features = labels_and_features
    with pytest.raises(ValueError, match="unknown backend"):
        mutual_information_matrix(features, labels, backend="dask")


# ----------------------------------------------------------------------------- scores
def test_mi_score_by_hand():
    matrix = np.array([[0.30, 0.00, 0.10, 0.0], [0.10, 0.20, 0.10, 0.0]])
    # max over classes per filter: 0.3, 0.2, 0.1, 0.0 -> mean 0.15
    assert mi_score(matrix) == pytest.approx(0.15)
    # normalised columns: (.75,.25), (0,1), (.5,.5), (0,0) -> max 0.75, 1, 0.5, 0 -> mean 0.5625
    assert mi_score(matrix, normalized=True) == pytest.approx(0.5625)
    assert mi_score(torch.tensor(matrix)) == pytest.approx(0.15)


def test_mi_score_rejects_a_vector():
    with pytest.raises(ValueError, match="C×K"):
        mi_score(np.array([0.1, 0.2]))


def test_mi_ceiling_by_hand_and_by_definition(labels_and_features):
    labels, features = labels_and_features
    logits = features[:, :3] * 4.0 - 2.0  # logit_c = ±2 for y == c or not: a perfect detector
    ceiling, per_class = mi_ceiling(logits, labels, n_jobs=1, per_class=True)
    expected = [binary_entropy(p) for p in (0.5, 1 / 3, 1 / 6)]
    np.testing.assert_allclose(per_class, expected, rtol=0.05)
    assert ceiling == pytest.approx(np.mean(expected), rel=0.05)
    for c in range(3):
        direct = mutual_info_classif(logits[:, [c]], labels == c, n_neighbors=3, random_state=0)
        assert per_class[c] == direct[0]
    assert mi_ceiling(logits, labels, n_jobs=2) == ceiling


def test_mi_ceiling_needs_a_logit_per_class(labels_and_features):
    labels, features = labels_and_features
    with pytest.raises(ValueError, match="no logit column"):
        mi_ceiling(features[:, :2], labels, n_jobs=1)


def test_accuracy_by_hand_and_errors():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    assert accuracy(logits, [0, 1, 1, 1]) == 0.75
    assert accuracy(torch.tensor(logits), torch.tensor([0, 0, 0, 0])) == 0.5
    with pytest.raises(ValueError, match="N×C logits and N labels"):
        accuracy(logits, [0, 1])


def test_gate_from_mi_by_hand_and_its_density():
    matrix = np.array([[0.2, 0.0, 0.0, 0.1], [0.1, 0.3, 0.0, 0.4]])
    gate = gate_from_mi(matrix)
    expected = torch.tensor([[1.0, 0.0, 1.0, 0.25], [0.5, 1.0, 1.0, 1.0]])
    torch.testing.assert_close(gate, expected)
    assert float(l1_density(gate)) == pytest.approx(5.75 / 8)
    clipped = gate_from_mi(matrix, projection="clip")  # global max 0.4 -> 1
    torch.testing.assert_close(clipped, torch.tensor(matrix / 0.4, dtype=torch.float32))


def test_gate_from_mi_rejects_negative_values_and_unknown_projection():
    with pytest.raises(ValueError, match="no negative entries"):
        gate_from_mi(np.array([[0.1, -0.2]]))
    with pytest.raises(ValueError, match="unknown projection"):
        gate_from_mi(np.array([[0.1, 0.2]]), projection="softmax")


def test_gate_mi_agreement_by_hand():
    gate = torch.tensor([[1.0, 0.0, 1.0], [0.5, 1.0, 0.2], [0.0, 0.3, 0.1]])
    matrix = np.array([[0.3, 0.0, 0.1], [0.1, 0.1, 0.2], [0.0, 0.2, 0.0]])
    # gate argmax: 0, 1, 0; MI argmax: 0, 2, 1 -> 1 of 3 agree
    assert gate_mi_agreement(gate, matrix) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        gate_mi_agreement(gate[:, :2], matrix)


# ----------------------------------------------------------------------------- filter table
def test_filter_table_rows_and_files(tmp_path):
    matrix = np.array([[0.3, 0.0, 0.1], [0.1, 0.1, 0.2], [0.0, 0.2, 0.0]])
    gate = torch.tensor([[1.0, 0.0, 1.0], [0.5, 1.0, 0.2], [0.0, 0.3, 0.1]])
    table = filter_table(matrix, gate, class_names=["a", "b", "c"])
    assert [r["gate_class"] for r in table.rows] == [0, 1, 0]
    assert [r["mi_class_name"] for r in table.rows] == ["a", "c", "b"]
    assert [r["agree"] for r in table.rows] == [True, False, False]
    assert [r["open_classes"] for r in table.rows] == [2, 1, 1]
    assert table.rows[1]["mi:c"] == 0.2 and table.rows[0]["gate:b"] == 0.5
    assert table.counts("mi") == [1, 1, 1] and table.filters_of(0, by="gate") == [0, 2]
    with (table.to_csv(tmp_path / "f.csv")).open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and rows[2]["gate_class_name"] == "a" and rows[2]["mi:a"] == "0.1"
    payload = json.loads(table.to_json(tmp_path / "f.json").read_text())
    assert payload["rows"] == table.rows and payload["class_names"] == ["a", "b", "c"]


def test_filter_table_without_gate_and_bad_names():
    table = filter_table(np.array([[0.3, 0.0], [0.1, 0.2]]))
    assert all(r["gate_class"] is None and r["agree"] is None for r in table.rows)
    assert [r["mi_class"] for r in table.rows] == [0, 1]
    with pytest.raises(ValueError, match="3 class names"):
        filter_table(np.zeros((2, 2)), class_names=["a", "b", "c"])


# ----------------------------------------------------------------------------- features
def relu_net(num_filters: int = 3, num_classes: int = 2, gate: bool = True) -> CSGNet:
    """features = ReLU(x) (K = input channels); head = GAP -> fixed linear."""
    linear = nn.Linear(num_filters, num_classes)
    with torch.no_grad():
        linear.weight.copy_(torch.arange(num_classes * num_filters, dtype=torch.float32)
                            .view(num_classes, num_filters))
        linear.bias.fill_(0.5)
    head = GAPLinearHead(linear, dropout=nn.Dropout(0.9))  # eval mode must switch dropout off
    gate_module = ClassSpecificGate(num_classes, num_filters) if gate else None
    return CSGNet(nn.ReLU(), head, num_classes, num_filters, gate_module)


def test_extract_features_is_the_pooled_gated_map_by_hand():
    x = torch.tensor([[[[1.0, -1.0], [3.0, 0.0]], [[-2.0, -2.0], [-2.0, -2.0]],
                       [[0.5, 0.5], [0.5, 0.5]]]])
    net = relu_net()
    net.train()
    features, labels = extract_features(net, (x, torch.tensor([1])), progress=False)
    np.testing.assert_allclose(features, [[1.0, 0.0, 0.5]])
    assert labels.tolist() == [1]
    assert net.training  # restored
    out = extract_outputs(net, x, progress=False)
    # logits = W · f + b with W = [[0,1,2],[3,4,5]]: [0 + 0 + 1, 3 + 0 + 2.5] + 0.5
    np.testing.assert_allclose(out.logits, [[1.5, 6.0]])
    assert out.labels is None and out.predictions.tolist() == [1]


def test_extract_features_batch_equals_loop():
    torch.manual_seed(0)
    x = torch.randn(7, 3, 4, 4)
    y = torch.arange(7) % 2
    net = relu_net()
    whole, _ = extract_features(net, (x, y), batch_size=256, progress=False)
    batched, labels = extract_features(net, (x, y), batch_size=3, progress=False)
    loop = np.concatenate([extract_features(net, x[i : i + 1], progress=False)[0] for i in range(7)])
    np.testing.assert_allclose(batched, whole, rtol=1e-6)
    np.testing.assert_allclose(loop, whole, rtol=1e-6)
    assert labels.tolist() == y.tolist()


def test_extract_features_reads_an_array_dataset():
    from csg_interp.data import ArrayDataset

    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    dataset = ArrayDataset(images, torch.tensor([0, 1, 0, 1, 1]), ["a", "b"])
    features, labels = extract_features(relu_net(), dataset, batch_size=2, progress=False)
    np.testing.assert_allclose(features, images.float().div(255).mean(dim=(2, 3)).numpy(), rtol=1e-6)
    assert labels.tolist() == [0, 1, 0, 1, 1]


@pytest.mark.parametrize(
    "data, message",
    [
        (torch.rand(3, 4, 4), "4-D batch"),
        ((torch.rand(3, 3, 4, 4), torch.tensor([0, 1])), "one label per image"),
        ("images.npy", "cannot read images"),
    ],
)
def test_extract_features_bad_input(data, message):
    with pytest.raises(ValueError, match=message):
        extract_features(relu_net(), data, progress=False)


def test_extract_features_needs_a_split_network():
    with pytest.raises(ValueError, match="CSGNet.from_backbone"):
        extract_features(nn.Linear(2, 2), torch.rand(1, 1, 2, 2), progress=False)


# ----------------------------------------------------------------------------- fast estimator
@pytest.mark.parametrize("balanced", [False, True])
def test_sorted_estimator_agrees_with_sklearn(balanced):
    """The optional fast path: same estimator, equal up to rounding (ReLU-like ties included)."""
    rng = np.random.RandomState(1)
    labels = rng.randint(0, 4, 800)
    features = np.maximum(0.0, rng.randn(800, 6) + (labels[:, None] == np.arange(6)[None] % 4))
    exact = mutual_information_matrix(features, labels, n_jobs=1, balanced=balanced)
    fast = mutual_information_matrix(features, labels, estimator="sorted", balanced=balanced)
    np.testing.assert_allclose(fast, exact, rtol=1e-9, atol=1e-12)


def test_unknown_estimator_is_rejected(labels_and_features):
    labels, features = labels_and_features
    with pytest.raises(ValueError, match="unknown estimator"):
        mutual_information_matrix(features, labels, estimator="binning")
