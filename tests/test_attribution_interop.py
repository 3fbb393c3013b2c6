"""CSGAttribution inside Captum: NoiseTunnel, infidelity, sensitivity_max, visualization,
batch-vs-loop targets and hook removal. Each check is built so that a broken contract fails it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from captum.attr import NoiseTunnel
from captum.attr import visualization as viz
from captum.metrics import infidelity, infidelity_perturb_func_decorator, sensitivity_max
from matplotlib.figure import Figure
from torch import nn

from csg_interp.attribution import CSGAttribution, expand_to_input, to_visualization
from csg_interp.models import SmallCNN
from csg_interp.training import ClassSpecificGate, CSGNet, GAPLinearHead


def small_net(seed: int = 0) -> CSGNet:
    """A random SmallCNN (widths 4/6/8, 3 classes) with a random gate, for 8×8 inputs."""
    torch.manual_seed(seed)
    net = CSGNet.from_backbone(SmallCNN(num_classes=3, in_channels=1, widths=(4, 6, 8)))
    with torch.no_grad():
        net.gate.weight.uniform_(0.0, 1.0)
    return net.eval()


def linear_net(gate: torch.Tensor | None = None) -> CSGNet:
    """1×1 conv with positive weights + ReLU on positive inputs + GAP → linear: a linear model."""
    conv = nn.Conv2d(1, 3, kernel_size=1, bias=False)
    linear = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1, 1))
        linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [-1.0, 0.5, 3.0]]))
        linear.bias.copy_(torch.tensor([0.2, -0.1]))
    csg_gate = ClassSpecificGate(2, 3)
    with torch.no_grad():
        csg_gate.weight.copy_(gate if gate is not None else torch.ones(2, 3))
    return CSGNet(nn.Sequential(conv, nn.ReLU()), GAPLinearHead(linear), 2, 3, csg_gate).eval()


MODES = [("cam", {}), ("activation", {}), ("top_filters", {"top_n": 3})]


# ---------------------------------------------------------------------------- NoiseTunnel
@pytest.mark.parametrize("mode, options", MODES)
def test_noise_tunnel_with_zero_noise_equals_plain(mode, options):
    csg = CSGAttribution.from_net(small_net(), mode=mode, **options)
    x = torch.rand(4, 1, 8, 8)
    targets = [2, 0, 1, 2]
    plain = csg.attribute(x, target=targets)
    tunnel = NoiseTunnel(csg).attribute(
        x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0, target=targets
    )
    torch.testing.assert_close(tunnel, plain)
    noisy = NoiseTunnel(csg).attribute(x, nt_samples=3, stdevs=0.5, target=targets)
    assert noisy.shape == plain.shape and not torch.allclose(noisy, plain)


# ---------------------------------------------------------------------------- infidelity
@infidelity_perturb_func_decorator(multiply_by_inputs=True)
def _small_noise(inputs):
    return inputs - 0.1 * torch.rand_like(inputs)


def test_infidelity_scores_the_exact_cam_near_zero_and_a_shuffled_one_higher():
    net = linear_net()
    x = 0.5 + 0.5 * torch.rand(3, 1, 5, 5)  # positive: the ReLU is the identity
    target = torch.tensor([0, 1, 0])

    def score(attributions, normalize=True):
        torch.manual_seed(0)
        return infidelity(
            net, _small_noise, x, attributions, target=target, n_perturb_samples=20,
            normalize=normalize,
        ).mean()  # fmt: skip

    # CAM_p = Σ_k W[c,k]·A_k(p) = (h·w)·x_p·∂f_c/∂x_p: exact after dividing by h·w = 25.
    exact = expand_to_input(CSGAttribution.from_net(net).attribute(x, target=target), x)
    shuffled = exact.flatten(1)[:, torch.randperm(25)].view_as(exact)
    # 'activation' drops W: on this 1-channel linear model it is proportional to the CAM with
    # another factor per class, so only the scale-sensitive score (normalize=False) can tell.
    wrong_mode = expand_to_input(
        CSGAttribution.from_net(net, mode="activation").attribute(x, target=target), x
    )
    floor = 1e-10
    assert score(exact) < 1e-8
    assert score(exact / 25, normalize=False) < 1e-8
    assert score(shuffled) > 100 * max(score(exact), floor)
    assert score(wrong_mode / 25, normalize=False) > 100 * max(score(exact / 25, False), floor)


def test_expand_to_input_shapes_and_errors():
    attr = torch.arange(4.0).view(1, 1, 2, 2)
    expanded = expand_to_input(attr, torch.zeros(1, 3, 4, 4))
    assert expanded.shape == (1, 3, 4, 4)
    torch.testing.assert_close(expanded[0, 2, :2, :2], torch.zeros(2, 2))
    torch.testing.assert_close(expanded[0, 1, 2:, 2:], torch.full((2, 2), 3.0))
    with pytest.raises(ValueError, match="attr_dim_summation=True"):
        expand_to_input(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="2 maps for 1 inputs"):
        expand_to_input(torch.zeros(2, 1, 2, 2), torch.zeros(1, 3, 4, 4))


# ---------------------------------------------------------------------------- sensitivity
def test_sensitivity_max_runs_and_is_finite():
    csg = CSGAttribution.from_net(small_net())
    x = torch.rand(2, 1, 8, 8)
    sens = sensitivity_max(csg.attribute, x, target=1, n_perturb_samples=3, perturb_radius=0.05)
    assert sens.shape == (2,)
    assert torch.isfinite(sens).all() and (sens >= 0).all() and sens.sum() > 0


def test_tuple_inputs_give_a_tuple_like_captum():
    csg = CSGAttribution.from_net(small_net())
    x = torch.rand(2, 1, 8, 8)
    out = csg.attribute((x,), target=1)
    assert isinstance(out, tuple) and len(out) == 1
    torch.testing.assert_close(out[0], csg.attribute(x, target=1))


# ---------------------------------------------------------------------------- visualization
def test_documented_transform_feeds_captum_visualization():
    csg = CSGAttribution.from_net(small_net())
    x = torch.rand(1, 1, 8, 8)
    attr = csg.attribute(x, target=0)
    hwc = to_visualization(attr, (8, 8))
    assert hwc.shape == (8, 8, 1)
    fig, ax = viz.visualize_image_attr(
        hwc, x[0].permute(1, 2, 0).numpy(), method="blended_heat_map", sign="all",
        use_pyplot=False,
    )  # fmt: skip
    assert isinstance(fig, Figure)
    shown = ax.images[-1].get_array()
    assert shown.shape == (8, 8)
    # Captum normalises by a percentile; the ranking of the pixels is what must survive.
    upsampled = hwc[..., 0]
    assert (shown.argmax() == upsampled.argmax()) or (shown.argmin() == upsampled.argmin())
    with pytest.raises(ValueError, match=r"expected maps \(N, 1, h, w\)"):
        to_visualization(torch.zeros(1, 4, 2, 2))


# ---------------------------------------------------------------------------- targets
@pytest.mark.parametrize("mode, options", MODES)
@pytest.mark.parametrize("summed", [True, False])
def test_batch_with_per_example_targets_equals_loop(mode, options, summed):
    csg = CSGAttribution.from_net(small_net(), mode=mode, **options)
    x = torch.rand(4, 1, 8, 8)
    targets = [2, 0, 1, 2]
    batch = csg.attribute(x, target=targets, attr_dim_summation=summed)
    loop = torch.cat([
        csg.attribute(x[i : i + 1], target=t, attr_dim_summation=summed)
        for i, t in enumerate(targets)
    ])
    torch.testing.assert_close(batch, loop)
    batch_tensor = csg.attribute(x, target=torch.tensor(targets), attr_dim_summation=summed)
    torch.testing.assert_close(batch_tensor, loop)


def test_target_none_is_the_predicted_class():
    net = small_net()
    csg = CSGAttribution.from_net(net)
    x = torch.rand(4, 1, 8, 8)
    predicted = net(x).argmax(1)
    torch.testing.assert_close(csg.attribute(x), csg.attribute(x, target=predicted))


# ---------------------------------------------------------------------------- hooks
def _hook_count(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def test_no_hooks_remain_after_success_or_exception():
    net = small_net()
    csg = CSGAttribution.from_net(net)
    x = torch.rand(2, 1, 8, 8)
    before = _hook_count(net)
    layer_before = len(net.gated_layer._forward_hooks)
    csg.attribute(x, target=1)
    assert _hook_count(net) == before
    with pytest.raises(ValueError, match="out of range"):
        csg.attribute(x, target=7)  # fails after the forward pass
    assert _hook_count(net) == before
    assert len(net.gated_layer._forward_hooks) == layer_before

    class Boom(nn.Module):
        def forward(self, activations):
            raise RuntimeError("the head failed")

    net.head = Boom()  # fails inside the forward pass, after the hooked layer ran
    with pytest.raises(RuntimeError, match="the head failed"):
        CSGAttribution.from_net(net, mode="activation").attribute(x, target=0)
    assert _hook_count(net) == before
