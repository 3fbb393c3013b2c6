"""Sanity check (cascading randomisation) and deletion / insertion faithfulness."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from csg_interp.attribution import CSGAttribution
from csg_interp.attribution.sanity import (
    cascade_units,
    deletion_insertion,
    sanity_check,
)
from csg_interp.models import SmallCNN, SmallResNet
from csg_interp.training import CSGNet, GAPLinearHead


def small_net(seed: int = 0) -> CSGNet:
    torch.manual_seed(seed)
    net = CSGNet.from_backbone(SmallCNN(num_classes=3, in_channels=1, widths=(4, 6, 8)))
    with torch.no_grad():
        net.gate.weight.uniform_(0.2, 1.0)
    return net.eval()


class InputOnly:
    """A 'method' that ignores the model: the image pooled to the layer size (an edge-detector
    style map). The sanity check must flag it."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def attribute(self, images, target=None):
        return nn.functional.adaptive_avg_pool2d(images, 4)


def test_cascade_order_is_head_gate_then_features_reversed():
    net = CSGNet.from_backbone(
        SmallResNet(8, 3, 1, widths=(4, 4, 4)), normalize=((0.5,), (0.25,))
    )
    names = [name for name, _ in cascade_units(net)]
    assert names == [
        "head", "gate", "features.body.layer3", "features.body.layer2", "features.body.layer1",
        "features.body.bn1", "features.body.conv1",
    ]  # fmt: skip
    net.gate = None
    assert [n for n, _ in cascade_units(net)][:2] == ["head", "features.body.layer3"]
    cnn = CSGNet.from_backbone(SmallCNN(3, 1, (4, 6, 8)), normalize=((0.5,), (0.25,)))
    units = cascade_units(cnn)  # wrappers with one parameterised child are looked through
    assert [name for name, _ in units[:2]] == ["head", "gate"]
    kinds = [type(module).__name__ for _, module in units[2:]]
    assert kinds == ["BatchNorm2d", "Conv2d"] * 3  # bn3, conv3, bn2, conv2, bn1, conv1


def test_sanity_check_rows_trained_model_untouched_and_deterministic():
    net = small_net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    images = torch.rand(6, 1, 16, 16)
    methods = {
        "CSGAttribution": lambda m: CSGAttribution.from_net(m),
        "LayerGradCam": lambda m: LayerGradCam(m, m.gated_layer),
        "InputOnly": InputOnly,
    }
    result = sanity_check(net, images, methods=methods, seed=3)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, state[key])
    units = result.units
    assert units[0] == "head" and units[1] == "gate"
    assert len(result.rows) == 3 * (len(units) + 1)
    for method in methods:
        curve = result.curve(method)
        assert curve[0] == 1.0 and len(curve) == len(units) + 1
    # Randomising the head changes the CAM-style map (it uses W) and Grad-CAM's.
    assert result.curve("CSGAttribution")[1] < 0.99
    assert result.curve("LayerGradCam")[1] < 0.99
    # Randomising the gate leaves Grad-CAM untouched: net(x) never uses the gate.
    assert result.curve("LayerGradCam")[2] == pytest.approx(result.curve("LayerGradCam")[1])
    # The model-independent map never changes, so it fails; the real methods pass.
    assert result.curve("InputOnly") == [1.0] * (len(units) + 1)
    assert result.unchanged(threshold=0.5) == ["InputOnly"]
    again = sanity_check(net, images, methods=methods, seed=3)
    assert again.rows == result.rows
    table = result.to_markdown()
    header = "| step | randomised up to | CSGAttribution | LayerGradCam | InputOnly |"
    assert table.splitlines()[0] == header
    assert "| 1 | head |" in table


def test_sanity_check_default_methods_and_std_model_with_explicit_gate():
    net = small_net()
    gate = net.gate.weight.detach().clone()
    net.gate = None
    result = sanity_check(net, torch.rand(4, 1, 16, 16), target=1, gate=gate)
    assert result.methods == ["CSGAttribution", "LayerGradCam"]
    assert "gate" not in result.units


def test_sanity_check_bad_input():
    net = small_net()
    with pytest.raises(ValueError, match="4-D batch"):
        sanity_check(net, torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="methods is empty"):
        sanity_check(net, torch.rand(2, 1, 16, 16), methods={})
    with pytest.raises(ValueError, match="unknown method 'x'"):
        sanity_check(net, torch.rand(2, 1, 16, 16)).curve("x")


# ---------------------------------------------------------------------------- deletion / insertion
def mean_model() -> nn.Module:
    """logit_0 = mean of the pixels (a 1×1 identity conv, GAP, W = 1): hand-computable curves."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    linear = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        linear.weight.fill_(1.0)
    return nn.Sequential(conv, GAPLinearHead(linear))


def test_deletion_insertion_literal_curves():
    x = torch.tensor([[4.0, 3.0], [2.0, 1.0]]).view(1, 1, 2, 2)
    result = deletion_insertion(mean_model(), x, x, target=0, steps=4, score="logit")
    torch.testing.assert_close(result.fractions, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    # delete 4, then 3, 2, 1: means 10/4, 6/4, 3/4, 1/4, 0
    torch.testing.assert_close(result.deletion, torch.tensor([[2.5, 1.5, 0.75, 0.25, 0.0]]))
    torch.testing.assert_close(result.insertion, torch.tensor([[0.0, 1.0, 1.75, 2.25, 2.5]]))
    torch.testing.assert_close(result.deletion_auc, torch.tensor([0.9375]))
    torch.testing.assert_close(result.insertion_auc, torch.tensor([1.5625]))
    # The reversed map deletes the smallest pixels first: a worse (higher) deletion AUC.
    worse = deletion_insertion(mean_model(), x, -x, target=0, steps=4, score="logit")
    assert worse.deletion_auc.item() > result.deletion_auc.item()
    assert worse.insertion_auc.item() < result.insertion_auc.item()
    # steps=2 on 4 positions: intervals of 2 → points 0, 2, 4.
    coarse = deletion_insertion(mean_model(), x, x, target=0, steps=2, score="logit")
    torch.testing.assert_close(coarse.deletion, torch.tensor([[2.5, 0.75, 0.0]]))


def test_deletion_insertion_batch_equals_loop_and_errors():
    net = small_net()
    x = torch.rand(3, 1, 16, 16)
    maps = torch.rand(3, 1, 4, 4)
    batch = deletion_insertion(net, x, maps, target=[0, 2, 1], steps=5, batch_size=7)
    for i, t in enumerate([0, 2, 1]):
        single = deletion_insertion(net, x[i : i + 1], maps[i : i + 1], target=t, steps=5)
        torch.testing.assert_close(batch.deletion[i], single.deletion[0])
        torch.testing.assert_close(batch.insertion_auc[i], single.insertion_auc[0])
    with pytest.raises(ValueError, match="steps must be a positive"):
        deletion_insertion(net, x, maps, 0, steps=0)
    with pytest.raises(ValueError, match="maps must be"):
        deletion_insertion(net, x, maps[:2], 0)
    with pytest.raises(ValueError, match="one target per image"):
        deletion_insertion(net, x, maps, [0, 1])
    with pytest.raises(ValueError, match="score must be"):
        deletion_insertion(net, x, maps, 0, score="prob")


def test_deletion_insertion_matches_torchcam():
    torchcam_metrics = pytest.importorskip("torchcam.metrics")
    torchcam_methods = pytest.importorskip("torchcam.methods")
    net = small_net()
    x = torch.rand(4, 1, 16, 16)
    shape = (1, 16, 16)
    with torchcam_methods.GradCAM(net, target_layer=net.gated_layer, input_shape=shape) as cam:
        # logits_fn=None: torch-cam's Grad-CAM differentiates the score it is given (here the
        # logit, like Captum's), and the curves score the logit.
        metric = torchcam_metrics.DeletionInsertionMetric(cam, None, steps=10)
        metric.update(x)
        reference = metric.summary()
    maps = LayerGradCam(net, net.gated_layer).attribute(
        x, target=net(x).argmax(1), relu_attributions=True
    )
    ours = deletion_insertion(
        net, x, maps.detach(), target=net(x).argmax(1), steps=10, score="logit"
    ).summary()
    assert ours["deletion_auc"] == pytest.approx(reference["deletion_auc"], abs=1e-5)
    assert ours["insertion_auc"] == pytest.approx(reference["insertion_auc"], abs=1e-5)
