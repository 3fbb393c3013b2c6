"""The class-specific gate: projection invariants, density, hinge, gating, bad input."""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from csg_interp.training import (
    ClassSpecificGate,
    check_labels,
    gate_assignment,
    l1_density,
    project_gate_,
    sparsity_hinge,
)

finite = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, width=32)
gate_arrays = st.tuples(st.integers(1, 7), st.integers(1, 9)).flatmap(
    lambda shape: arrays("float32", shape, elements=finite)
)


@settings(max_examples=200, deadline=None)
@given(gate_arrays)
def test_max_projection_invariants(values):
    gate = torch.from_numpy(values.copy())
    project_gate_(gate, "max")
    assert gate.min() >= 0 and gate.max() <= 1
    # Every filter keeps at least one class fully open.
    assert torch.all(gate.max(dim=0).values == 1.0)


@settings(max_examples=200, deadline=None)
@given(gate_arrays)
def test_clip_projection_is_clipping(values):
    gate = torch.from_numpy(values.copy())
    project_gate_(gate, "clip")
    assert torch.equal(gate, torch.from_numpy(values).clamp(0, 1))


def test_max_projection_by_hand():
    gate = torch.tensor([[0.2, 0.9, 1.4], [0.4, 0.3, 0.7]])
    assert project_gate_(gate, "max") == 0
    expected = torch.tensor([[0.5, 1.0, 1.0], [1.0, 1 / 3, 0.5]])
    torch.testing.assert_close(gate, expected)


def test_zero_column_is_reset_and_logged(caplog):
    gate = torch.tensor([[0.5, 0.0, -0.2], [1.0, 0.0, -0.1]])
    with caplog.at_level(logging.WARNING, logger="csg_interp.training.gate"):
        assert project_gate_(gate, "max") == 2
    torch.testing.assert_close(gate, torch.tensor([[0.5, 1.0, 1.0], [1.0, 1.0, 1.0]]))
    assert "2 filter column(s)" in caplog.text


def test_projection_under_random_updates_keeps_invariants():
    gate = ClassSpecificGate(10, 64)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        gate.weight.data += 0.3 * torch.randn(gate.weight.shape, generator=generator)
        gate.project_()
        assert gate.weight.min() >= 0 and gate.weight.max() <= 1
        assert torch.all(gate.weight.max(dim=0).values == 1)


def test_first_projection_opens_a_half_gate():
    gate = ClassSpecificGate(6, 5, init=0.5)
    gate.project_()
    assert torch.all(gate.weight == 1)
    assert gate.density().item() == 1.0


def test_density_and_hinge_by_hand():
    gate = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    assert l1_density(gate).item() == pytest.approx(3.0 / 6.0)
    # ‖G‖₁ = 3, τ·C·K = 0.2·2·3 = 1.2 → 1.8; with τ = 0.5 the bound 3.0 makes it 0.
    assert sparsity_hinge(gate, 0.2).item() == pytest.approx(1.8)
    assert sparsity_hinge(gate, 0.5).item() == 0.0


def test_hinge_gradient_is_one_per_entry_while_active():
    weight = torch.full((3, 4), 0.5, requires_grad=True)
    sparsity_hinge(weight, 0.1).backward()
    assert torch.equal(weight.grad, torch.ones(3, 4))
    weight.grad = None
    sparsity_hinge(weight, 0.9).backward()
    assert torch.equal(weight.grad, torch.zeros(3, 4))


def test_reference_voc_numbers():
    # csg-method §2: on VOC (6 × 2048) the hinge starts at 6144 − 2457.6 = 3686.4.
    gate = ClassSpecificGate(6, 2048)
    assert gate.sparsity_penalty(0.2).item() == pytest.approx(3686.4, rel=1e-6)


def test_gating_equals_per_sample_loop():
    gate = ClassSpecificGate(4, 6)
    gate.weight.data = torch.rand(4, 6)
    activations = torch.rand(5, 6, 3, 3)
    labels = torch.tensor([3, 0, 0, 2, 1])
    expected = torch.stack(
        [activations[i] * gate.weight[labels[i]].view(-1, 1, 1) for i in range(5)]
    )
    torch.testing.assert_close(gate(activations, labels), expected)
    # Pooled (N, K) input works the same way.
    torch.testing.assert_close(gate(activations.mean((2, 3)), labels), expected.mean((2, 3)))


def test_assignment_and_filters_of():
    gate = ClassSpecificGate(3, 4)
    gate.weight.data = torch.tensor(
        [[1.0, 0.2, 0.0, 0.6], [0.0, 1.0, 0.0, 1.0], [0.3, 0.9, 1.0, 0.0]]
    )
    assert gate.assignment().tolist() == [0, 1, 2, 1]
    assert torch.equal(gate_assignment(gate.weight), gate.assignment())
    assert gate.filters_of(2).tolist() == [2, 1]
    assert gate.filters_of(0, threshold=0.5).tolist() == [0, 3]
    with pytest.raises(ValueError, match="out of range"):
        gate.filters_of(3)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0, 4]), "label 4 is out of range for 4 classes"),
        (torch.tensor([-1, 0]), "label -1 is out of range"),
        (torch.tensor([0.0, 1.0]), "integer class indices"),
        (torch.tensor([[0, 1]]), "1-D tensor"),
        (torch.tensor([0, 1, 2]), "3 labels for a batch of 2"),
    ],
)
def test_bad_labels(labels, message):
    gate = ClassSpecificGate(4, 3)
    with pytest.raises(ValueError, match=message):
        gate(torch.rand(2, 3, 2, 2), labels)


def test_bad_gate_arguments():
    with pytest.raises(ValueError, match="unknown projection 'l2'"):
        ClassSpecificGate(3, 3, projection="l2")
    with pytest.raises(ValueError, match="init must lie in"):
        ClassSpecificGate(3, 3, init=1.5)
    with pytest.raises(ValueError, match="at least one class"):
        ClassSpecificGate(0, 3)
    with pytest.raises(ValueError, match="tau is a density bound"):
        sparsity_hinge(torch.ones(2, 2), 2.0)
    with pytest.raises(ValueError, match=r"expected \(N, 3, \.\.\.\)"):
        ClassSpecificGate(2, 3)(torch.rand(2, 5, 2, 2), torch.tensor([0, 1]))
    assert check_labels([0, 1], 2).dtype == torch.long
