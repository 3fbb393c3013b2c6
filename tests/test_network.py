"""CSGNet: gate placement per family, the two paths, bad input."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from csg_interp.models import SmallResNet, available_models, build_backbone
from csg_interp.training import ClassSpecificGate, CSGNet, GAPLinearHead, Normalize


def _hand_net(gate_values: torch.Tensor) -> CSGNet:
    """features = ReLU(identity conv), head = GAP → linear with W = I, b = 0."""
    conv = nn.Conv2d(2, 2, 1, bias=False)
    conv.weight.data = torch.eye(2).view(2, 2, 1, 1)
    features = nn.Sequential(conv, nn.ReLU())
    linear = nn.Linear(2, 2)
    linear.weight.data = torch.eye(2)
    linear.bias.data.zero_()
    gate = ClassSpecificGate(2, 2)
    gate.weight.data = gate_values
    return CSGNet(features, GAPLinearHead(linear), 2, 2, gate)


def test_hand_weighted_paths():
    net = _hand_net(torch.tensor([[1.0, 0.0], [0.25, 1.0]]))
    x = torch.zeros(2, 2, 2, 2)
    x[:, 0] = 2.0  # filter 0 pools to 2
    x[:, 1] = 4.0  # filter 1 pools to 4
    std, csg = net(x, torch.tensor([0, 1]))
    torch.testing.assert_close(std, torch.tensor([[2.0, 4.0], [2.0, 4.0]]))
    # class 0 keeps filter 0 only; class 1 keeps a quarter of filter 0 and all of filter 1.
    torch.testing.assert_close(csg, torch.tensor([[2.0, 0.0], [0.5, 4.0]]))
    torch.testing.assert_close(net(x), std)


def test_pooled_shortcut_equals_gating_the_map():
    net = CSGNet.from_backbone(build_backbone("resnet8", 5, 1), normalize=((0.3,), (0.4,)))
    net.gate.weight.data = torch.rand(5, 64)
    net.eval()
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    _, csg = net(x, y)
    gated_map = net.gate(net.features(x), y)
    torch.testing.assert_close(csg, net.head(gated_map), rtol=1e-5, atol=1e-5)


def test_std_path_ignores_the_gate():
    net = CSGNet.from_backbone(build_backbone("smallcnn", 3, 1)).eval()
    x = torch.rand(4, 1, 8, 8)
    before = net(x)
    net.gate.weight.data.zero_()
    torch.testing.assert_close(net(x), before)


def test_wrapping_reuses_the_backbone_and_matches_it():
    model = build_backbone("resnet18", 4, 3).eval()
    net = CSGNet.from_backbone(model).eval()
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(net(x), model(x))
    assert net.features.layer4 is model.layer4
    assert net.linear_head is model.fc


# family -> (input channels, expected K, name of the gated stage or None, head type)
FAMILIES = {
    "resnet8": (1, 64, "layer3", GAPLinearHead),
    "resnet14": (1, 64, "layer3", GAPLinearHead),
    "resnet20": (1, 64, "layer3", GAPLinearHead),
    "smallcnn": (1, 32, None, GAPLinearHead),
    "resnet18": (3, 512, "layer4", GAPLinearHead),
    "resnet34": (3, 512, "layer4", GAPLinearHead),
    "resnet50": (3, 2048, "layer4", GAPLinearHead),
    "vgg11_bn": (3, 512, None, nn.Sequential),
    "mobilenet_v2": (3, 1280, None, GAPLinearHead),
    "densenet121": (3, 1024, None, GAPLinearHead),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_ready_made_backbone_places_the_gate_as_documented(name):
    channels, num_filters, stage, head_type = FAMILIES[name]
    net = CSGNet.from_backbone(build_backbone(name, 6, channels), in_channels=channels).eval()
    size = 32
    x = torch.rand(2, channels, size, size)
    activations = net.features(x)
    assert activations.shape[1] == num_filters == net.num_filters
    assert activations.min() >= 0, "the gate must sit after a ReLU"
    assert isinstance(net.head, head_type)
    assert net.gate.weight.shape == (6, num_filters)
    if stage is not None:
        assert list(net.features.named_children())[-1][0] == stage
    std, csg = net(x, torch.tensor([0, 5]))
    assert std.shape == csg.shape == (2, 6)


def test_registry_is_complete():
    assert set(available_models()) == set(FAMILIES)


def test_gating_an_earlier_stage_moves_the_rest_into_the_head():
    model = SmallResNet(14, num_classes=3, in_channels=1).eval()
    net = CSGNet.from_backbone(model, layer="layer2").eval()
    assert net.num_filters == 32
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(net(x), model(x))
    with pytest.raises(ValueError, match="not GAP → linear"):
        net.linear_head


def test_timm_style_model():
    class TimmLike(nn.Module):
        num_features, num_classes = 8, 3

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU())
            self.fc = nn.Linear(8, 3)

        def forward_features(self, x):
            return self.body(x)

        def forward_head(self, x):
            return self.fc(x.mean((2, 3)))

        def forward(self, x):
            return self.forward_head(self.forward_features(x))

    model = TimmLike()
    net = CSGNet.from_backbone(model)
    x = torch.rand(2, 1, 6, 6)
    torch.testing.assert_close(net(x), model(x))
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in model.parameters()
    ) + net.gate.weight.numel()


def test_normalize_module():
    norm = Normalize((0.5, 0.25), (0.5, 0.5))
    x = torch.ones(1, 2, 1, 1)
    torch.testing.assert_close(norm(x).flatten(), torch.tensor([1.0, 1.5]))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize((0.0,), (0.0,))


def test_bad_input_errors():
    net = CSGNet.from_backbone(build_backbone("resnet8", 4, 1), in_channels=1)
    with pytest.raises(ValueError, match=r"4-D batch.*unsqueeze"):
        net(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="1 input channel"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        net(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="label 4 is out of range for 4 classes"):
        net(torch.rand(2, 1, 8, 8), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="unknown layer 'layer9'.*conv1, bn1, relu, layer1"):
        CSGNet.from_backbone(build_backbone("resnet8", 4, 1), layer="layer9")
    with pytest.raises(ValueError, match=r"gate shape \(4, 10\) does not match .* \(4, 64\)"):
        model = build_backbone("resnet8", 4, 1)
        net = CSGNet.from_backbone(model)
        CSGNet(net.features, net.head, 4, 64, ClassSpecificGate(4, 10))
    with pytest.raises(ValueError, match="no gate"):
        CSGNet.from_backbone(build_backbone("resnet8", 4, 1), gate=False)(
            torch.rand(1, 1, 8, 8), torch.tensor([0])
        )
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        build_backbone("resnet9", 3)
    with pytest.raises(ValueError, match="depth must be 6n"):
        SmallResNet(depth=10)


def test_unsupported_families_say_what_to_do():
    import torchvision

    with pytest.raises(ValueError, match="Hardswish/SiLU.*explicit modules"):
        CSGNet.from_backbone(torchvision.models.mobilenet_v3_small(weights=None))
    odd = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), head=nn.Flatten()))
    with pytest.raises(ValueError, match="cannot find where to put the gate"):
        CSGNet.from_backbone(odd)


def test_plain_network_has_no_gate_and_same_output():
    net = CSGNet.from_backbone(build_backbone("smallcnn", 3, 1)).eval()
    plain = net.plain_network()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(plain(x), net(x))
    assert not any("gate" in name for name, _ in plain.named_parameters())
