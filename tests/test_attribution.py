"""CSGAttribution on a hand-weighted conv model with a hand-set gate: literal expected maps.

The model (Captum test style): a 2×2 / stride-2 conv with three filters and a ReLU, then
GAP → linear. On ``x1 = arange(16).view(1, 1, 4, 4)`` the 2×2 block sums are s = [[10, 18],
[42, 50]], so

* A0 = s = [[10, 18], [42, 50]]                      (weights 1, bias 0)
* A1 = relu(40 − s) = [[30, 22], [0, 0]]             (weights −1, bias 40)
* A2 = relu(s − 20) = [[0, 0], [22, 30]]             (weights 1, bias −20)

mean activations ā = [30, 13, 13]; W = [[1, 0, 2], [0.5, 1, −1]], b = [0, 1] give logits
[56, 16] (predicted 0). On ``x2 = zeros``: A0 = 0, A1 = 40, A2 = 0, logits [0, 41] (predicted 1).
The gate is G = [[1, 0, 0.5], [0, 1, 1]], so G⊙W = [[1, 0, 1], [0, 1, −1]].
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from csg_interp.attribution import CSGAttribution
from csg_interp.training import ClassSpecificGate, CSGNet, GAPLinearHead


def hand_net(gate_rows=((1.0, 0.0, 0.5), (0.0, 1.0, 1.0))) -> CSGNet:
    conv = nn.Conv2d(1, 3, kernel_size=2, stride=2)
    linear = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1, 1).expand(3, 1, 2, 2))
        conv.bias.copy_(torch.tensor([0.0, 40.0, -20.0]))
        linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, -1.0]]))
        linear.bias.copy_(torch.tensor([0.0, 1.0]))
    gate = ClassSpecificGate(2, 3)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor(gate_rows))
    return CSGNet(nn.Sequential(conv, nn.ReLU()), GAPLinearHead(linear), 2, 3, gate).eval()


X1 = torch.arange(16.0).view(1, 1, 4, 4)
X2 = torch.zeros(1, 1, 4, 4)
BATCH = torch.cat([X1, X2])


def maps(*rows):
    return torch.tensor(rows, dtype=torch.float32).view(len(rows), 1, 2, 2)


def test_forward_of_hand_model_is_as_computed():
    logits = hand_net()(BATCH)
    torch.testing.assert_close(logits, torch.tensor([[56.0, 16.0], [0.0, 41.0]]))


@pytest.mark.parametrize(
    "mode, target, expected",
    [
        ("cam", 0, maps([[10, 18], [64, 80]], [[0, 0], [0, 0]])),
        ("cam", 1, maps([[30, 22], [-22, -30]], [[40, 40], [40, 40]])),
        ("cam", None, maps([[10, 18], [64, 80]], [[40, 40], [40, 40]])),
        ("cam", [1, 0], maps([[30, 22], [-22, -30]], [[0, 0], [0, 0]])),
        ("cam", torch.tensor([1, 1]), maps([[30, 22], [-22, -30]], [[40, 40], [40, 40]])),
        ("cam", torch.tensor(0), maps([[10, 18], [64, 80]], [[0, 0], [0, 0]])),
        ("cam", np.int64(1), maps([[30, 22], [-22, -30]], [[40, 40], [40, 40]])),
        ("activation", 0, maps([[10, 18], [53, 65]], [[0, 0], [0, 0]])),
        ("activation", 1, maps([[30, 22], [22, 30]], [[40, 40], [40, 40]])),
    ],
)
def test_literal_maps(mode, target, expected):
    csg = CSGAttribution.from_net(hand_net(), mode=mode)
    torch.testing.assert_close(csg.attribute(BATCH, target=target), expected)


def test_top_filters_ranks_by_gated_mean_activation_ties_to_lower_index():
    # x1, class 0: scores G[0]·ā = [30, 0, 6.5] → filter 0; class 1: [0, 13, 13] → tie → filter 1.
    top1 = CSGAttribution.from_net(hand_net(), mode="top_filters", top_n=1)
    torch.testing.assert_close(top1.attribute(X1, target=0), maps([[10, 18], [42, 50]]))
    torch.testing.assert_close(top1.attribute(X1, target=1), maps([[30, 22], [0, 0]]))
    torch.testing.assert_close(
        top1.top_filter_indices(top1.layer_output_and_logits(X1)[0], torch.tensor([0])),
        torch.tensor([[0]]),
    )
    top2 = CSGAttribution.from_net(hand_net(), mode="top_filters", top_n=2)
    torch.testing.assert_close(top2.attribute(X1, target=1), maps([[30, 22], [22, 30]]))


def test_relu_and_per_filter_maps():
    csg = CSGAttribution.from_net(hand_net())
    torch.testing.assert_close(
        csg.attribute(X1, target=1, relu_attributions=True), maps([[30, 22], [0, 0]])
    )
    per_filter = csg.attribute(X1, target=1, attr_dim_summation=False)
    expected = torch.tensor(
        [[[[0, 0], [0, 0]], [[30, 22], [0, 0]], [[0, 0], [-22, -30]]]], dtype=torch.float32
    )
    torch.testing.assert_close(per_filter, expected)
    torch.testing.assert_close(per_filter.sum(1, keepdim=True), csg.attribute(X1, target=1))


def test_cam_mean_plus_bias_is_the_csg_path_logit():
    net = hand_net()
    csg = CSGAttribution.from_net(net)
    labels = torch.tensor([0, 1])
    _, csg_logits = net(BATCH, labels)
    cam = csg.attribute(BATCH, target=labels)
    bias = net.linear_head.bias.detach()[labels]
    torch.testing.assert_close(cam.mean(dim=(1, 2, 3)) + bias, csg_logits[[0, 1], labels])


def test_all_ones_gate_cam_equals_captum_grad_cam_times_cells():
    # For GAP → linear, Grad-CAM's channel weights are W[c, k] / (h·w): CAM = h·w · Grad-CAM.
    net = hand_net(gate_rows=((1.0, 1.0, 1.0), (1.0, 1.0, 1.0)))
    csg = CSGAttribution.from_net(net)
    grad_cam = LayerGradCam(net, net.gated_layer)
    for target in (0, 1):
        torch.testing.assert_close(
            csg.attribute(BATCH, target=target),
            4 * grad_cam.attribute(BATCH, target=target),
        )


def test_std_model_explained_with_an_explicit_gate_like_the_csg_model():
    csg_net = hand_net()
    std_net = hand_net()
    std_net.gate = None
    explicit = CSGAttribution.from_net(std_net, gate=csg_net.gate.weight.detach().clone())
    torch.testing.assert_close(
        explicit.attribute(BATCH, target=1), CSGAttribution.from_net(csg_net).attribute(BATCH, 1)
    )


def test_generic_model_with_weight_argument_and_interpolation():
    net = hand_net()
    plain = net.plain_network()
    csg = CSGAttribution(
        plain, plain.features, net.gate.weight, mode="cam", weight=net.linear_head.weight
    )
    attr = csg.attribute(BATCH, target=0)
    torch.testing.assert_close(attr, CSGAttribution.from_net(net).attribute(BATCH, target=0))
    up = LayerAttribution.interpolate(attr, (4, 4))
    assert up.shape == (2, 1, 4, 4)
    torch.testing.assert_close(up[0, 0, :2, :2], torch.full((2, 2), 10.0))


def test_captum_flags():
    csg = CSGAttribution.from_net(hand_net())
    assert csg.multiplies_by_inputs is False
    assert csg.has_convergence_delta() is False
    assert isinstance(csg, LayerAttribution)


def test_no_graph_is_kept_unless_inputs_require_grad():
    csg = CSGAttribution.from_net(hand_net())
    assert not csg.attribute(BATCH, target=0).requires_grad
    x = BATCH.clone().requires_grad_()
    attr = csg.attribute(x, target=0)
    attr.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "target, match",
    [
        (2, "target 2 is out of range for 2 classes"),
        (-1, "target -1 is out of range"),
        ([0, 5], "target 5 is out of range"),
        (torch.tensor([0, 1, 1]), "one class per example"),
        ([0], "one class per example"),
        ((0,), "tuple targets"),
        (torch.tensor([0.0, 1.0]), "integer class indices"),
        ("cat", "target must be None, an int"),
    ],
)
def test_bad_targets(target, match):
    csg = CSGAttribution.from_net(hand_net())
    with pytest.raises(ValueError, match=match):
        csg.attribute(BATCH, target=target)


def test_wrong_input_dimensions():
    csg = CSGAttribution.from_net(hand_net())
    with pytest.raises(ValueError, match=r"4-D batch .*x\.unsqueeze\(0\)"):
        csg.attribute(X1[0], target=0)
    with pytest.raises(ValueError, match="float images"):
        csg.attribute(BATCH.long(), target=0)


def test_layer_not_in_model():
    net = hand_net()
    with pytest.raises(ValueError, match="not a submodule of the model"):
        CSGAttribution(net, nn.Conv2d(1, 3, 2), net.gate, weight=net.linear_head.weight)


def test_layer_not_called_by_a_plain_function():
    net = hand_net()
    unused = nn.ReLU()
    csg = CSGAttribution(lambda x: net(x), unused, net.gate, mode="activation")
    with pytest.raises(ValueError, match="was not called by the forward function"):
        csg.attribute(BATCH, target=0)


@pytest.mark.parametrize(
    "gate, match",
    [
        (torch.ones(2, 4), "the gate has 4 filters .* layer outputs 3 channels"),
        (torch.ones(3, 3), "the gate has 3 classes .* model outputs 2"),
        (torch.ones(6), "C×K matrix"),
        ("open", "C×K tensor or a ClassSpecificGate"),
    ],
)
def test_gate_of_the_wrong_shape(gate, match):
    net = hand_net()
    with pytest.raises(ValueError, match=match):
        CSGAttribution(net, net.gated_layer, gate, mode="activation").attribute(BATCH, 0)


def test_cam_weight_shape_and_missing_weight():
    net = hand_net()
    with pytest.raises(ValueError, match="weight has shape"):
        CSGAttribution(net, net.gated_layer, net.gate, weight=torch.ones(3, 2))
    plain = net.plain_network()
    with pytest.raises(ValueError, match="mode 'cam' needs the C×K weight"):
        CSGAttribution(plain, plain.features, net.gate)


def test_cam_needs_a_gap_linear_head():
    net = hand_net()
    net.head = nn.Sequential(nn.Flatten(1), nn.Linear(12, 2))
    with pytest.raises(ValueError, match="not GAP → linear"):
        CSGAttribution.from_net(net, mode="cam")
    CSGAttribution.from_net(net, mode="activation").attribute(BATCH, 0)  # other modes work


def test_bad_mode_top_n_and_std_without_gate():
    net = hand_net()
    with pytest.raises(ValueError, match="unknown mode 'gradcam'"):
        CSGAttribution.from_net(net, mode="gradcam")
    with pytest.raises(ValueError, match=r"top_n must lie in \[1, 3\]"):
        CSGAttribution.from_net(net, mode="top_filters", top_n=4)
    net.gate = None
    with pytest.raises(ValueError, match="STD model .*gate_from_mi"):
        CSGAttribution.from_net(net)
    with pytest.raises(ValueError, match="from_net needs a CSGNet"):
        CSGAttribution.from_net(nn.Linear(2, 2))
