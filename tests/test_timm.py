"""timm models and vision transformers in CSGNet: where the gate sits, exactness, bad input.

Every model here is tiny (timm's ``test_*`` models or a ViT with a few channels) so that the whole
file runs in seconds on two cores.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

timm = pytest.importorskip("timm")

from csg_interp.attribution import CSGAttribution  # noqa: E402
from csg_interp.models import build_backbone  # noqa: E402
from csg_interp.training import CSGNet, GAPLinearHead  # noqa: E402
from csg_interp.training.network import ForwardHead, TokenPoolHead  # noqa: E402

VIT = dict(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2)
VIT_AVG = dict(VIT, class_token=False, global_pool="avg", fc_norm=False)

#: (model, options, image size, head class, cam exact)
ARCHITECTURES = {
    "resnet": ("timm:test_resnet", {}, 64, GAPLinearHead, True),
    "convnext": ("timm:test_convnext", {}, 64, ForwardHead, False),
    "convnext_norm_first": (
        "timm:test_convnext", {"head_norm_first": True}, 64, GAPLinearHead, True
    ),
    "efficientnet": ("timm:test_efficientnet", {}, 64, GAPLinearHead, True),
    "vit_avg": ("timm:vit_tiny_patch16_224", VIT_AVG, 16, GAPLinearHead, True),
    "vit_fc_norm": (
        "timm:vit_tiny_patch16_224", dict(VIT, global_pool="avg"), 16, TokenPoolHead, False
    ),
}


def _net(key: str, classes: int = 3) -> tuple[CSGNet, nn.Module, int]:
    name, options, size, _, _ = ARCHITECTURES[key]
    model = build_backbone(name, classes, 1, options=options)
    net = CSGNet.from_backbone(model, normalize=((0.4,), (0.3,)))
    net.gate.weight.data = torch.rand_like(net.gate.weight)
    return net.eval(), model, size


@pytest.mark.parametrize("key", sorted(ARCHITECTURES))
def test_gate_equals_per_sample_loop_and_batch_equals_loop(key):
    net, model, size = _net(key)
    _, _, _, head_type, _ = ARCHITECTURES[key]
    assert isinstance(net.head, head_type)
    x, y = torch.rand(4, 1, size, size), torch.tensor([2, 0, 1, 2])
    std, csg = net(x, y)
    # The STD path is the timm model itself (after the normalisation inside the net).
    torch.testing.assert_close(std, model((x - 0.4) / 0.3), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net(x), std)
    # The reference's per-sample loop: gate row of the label on the map, then the head.
    looped_csg, looped_std = [], []
    for i in range(4):
        activations = net.features(x[i : i + 1])
        gate_row = net.gate.weight[y[i]].view(1, -1, 1, 1)
        looped_csg.append(net.head(activations * gate_row))
        looped_std.append(net(x[i : i + 1]))
    torch.testing.assert_close(csg, torch.cat(looped_csg), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, torch.cat(looped_std), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(csg, std)  # the random gate does change the logits


@pytest.mark.parametrize("key", sorted(ARCHITECTURES))
def test_attribution_batch_equals_loop_and_cam_is_exact(key):
    net, _, size = _net(key)
    _, _, _, _, cam_exact = ARCHITECTURES[key]
    x, y = torch.rand(3, 1, size, size), torch.tensor([1, 2, 0])
    modes = ["activation", "top_filters"] + (["cam"] if cam_exact else [])
    for mode in modes:
        method = CSGAttribution.from_net(net, mode=mode, top_n=3)
        maps = method.attribute(x, target=y)
        h, w = net.features(x).shape[2:]
        assert maps.shape == (3, 1, h, w)
        looped = torch.cat([method.attribute(x[i : i + 1], target=int(y[i])) for i in range(3)])
        torch.testing.assert_close(maps, looped, rtol=1e-4, atol=1e-5)
    if cam_exact:
        # CAM's spatial mean plus the bias is the CSG-path logit of the target class.
        maps = CSGAttribution.from_net(net, mode="cam").attribute(x, target=y)
        _, csg = net(x, y)
        bias = net.linear_head.bias[y]
        torch.testing.assert_close(
            maps.mean(dim=(1, 2, 3)) + bias, csg.gather(1, y[:, None])[:, 0], rtol=1e-4, atol=1e-5
        )
    else:
        with pytest.raises(ValueError, match="mode='activation'"):
            CSGAttribution.from_net(net, mode="cam")


def _hand_vit() -> CSGNet:
    """A one-block ViT on 4×4 images, 2×2 patches, 2 channels, every weight set by hand.

    Patch embedding: channel 0 = sum of the patch, channel 1 = its top-left pixel. Position
    embedding 0, no norms (``norm_layer=nn.Identity``), attention with q = k = 0 (uniform weights)
    and v = proj = identity, so each token becomes x_i + mean_j x_j; the MLP's output layer is 0.
    Head: W = [[1, 0.5], [-1, 3]], b = [0.1, -0.2]; gate G = [[1, 0], [0.5, 1]].
    """
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(
        img_size=4, patch_size=2, in_chans=1, num_classes=2, embed_dim=2, depth=1, num_heads=1,
        mlp_ratio=1.0, class_token=False, global_pool="avg", fc_norm=False,
        norm_layer=nn.Identity,
    )  # fmt: skip
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.patch_embed.proj.weight[0] = 1.0
        model.patch_embed.proj.weight[1, 0, 0, 0] = 1.0
        block = model.blocks[0]
        block.attn.qkv.weight[4:6] = torch.eye(2)  # v = x; q = k = 0
        block.attn.proj.weight.copy_(torch.eye(2))
        model.head.weight.copy_(torch.tensor([[1.0, 0.5], [-1.0, 3.0]]))
        model.head.bias.copy_(torch.tensor([0.1, -0.2]))
    net = CSGNet.from_backbone(model)
    net.gate.weight.data = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    return net.eval()


def test_cam_on_a_hand_weighted_transformer():
    net = _hand_vit()
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4).repeat(2, 1, 1, 1) / 16  # pixels in [0, 1]
    # In units of 1/16: patches (row-major) sum to 14, 22, 46, 54, top-left pixels 1, 3, 9, 11;
    # their mean (34, 6) is added to each token: (48, 7), (56, 9), (80, 15), (88, 17).
    expected_tokens = torch.tensor([[[48.0, 56.0], [80.0, 88.0]], [[7.0, 9.0], [15.0, 17.0]]]) / 16
    torch.testing.assert_close(net.features(x)[0], expected_tokens)
    maps = CSGAttribution.from_net(net, mode="cam").attribute(x, target=[0, 1])
    # class 0: G·W = (1, 0) → channel 0; class 1: G·W = (-0.5, 3) → -0.5·c0 + 3·c1.
    torch.testing.assert_close(maps[0, 0], torch.tensor([[48.0, 56.0], [80.0, 88.0]]) / 16)
    torch.testing.assert_close(maps[1, 0], torch.tensor([[-3.0, -1.0], [5.0, 7.0]]) / 16)
    std, csg = net(x, torch.tensor([0, 1]))
    # STD: W·(68, 12)/16 + b; CSG: W·(G_y ⊙ (68, 12))/16 + b.
    torch.testing.assert_close(std[0], torch.tensor([74 / 16 + 0.1, -32 / 16 - 0.2]))
    torch.testing.assert_close(csg[0, 0], torch.tensor(68 / 16 + 0.1))  # = mean(cam_0) + b_0
    torch.testing.assert_close(csg[1, 1], torch.tensor(2 / 16 - 0.2))  # = mean(cam_1) + b_1


def test_refused_heads_say_what_to_do():
    cls_vit = build_backbone("timm:vit_tiny_patch16_224", 3, 1, options=VIT)
    with pytest.raises(ValueError, match="global_pool='token'.*global_pool=avg"):
        CSGNet.from_backbone(cls_vit)
    no_head = build_backbone("timm:test_resnet", 3, 1)
    no_head.reset_classifier(0)
    with pytest.raises(ValueError, match="num_classes=0"):
        CSGNet.from_backbone(no_head)
    nhwc = build_backbone("timm:test_resnet", 3, 1)
    nhwc.output_fmt = "NHWC"  # as timm's Swin Transformer declares
    with pytest.raises(ValueError, match="NHWC features.*explicit modules"):
        CSGNet.from_backbone(nhwc)
    with pytest.raises(ValueError, match="layer='layer3' is not supported for timm"):
        CSGNet.from_backbone(build_backbone("timm:test_resnet", 3, 1), layer="layer3")
    net, _, _ = _net("vit_avg")
    with pytest.raises(ValueError, match="img_size"):
        net(torch.rand(1, 1, 20, 20))  # built for 16 px


def test_build_backbone_errors():
    with pytest.raises(ValueError, match="unknown timm model 'resnet_nope'"):
        build_backbone("timm:resnet_nope", 3, 1)
    with pytest.raises(ValueError, match="never downloaded.*--weights"):
        build_backbone("timm:test_resnet", 3, 1, options={"pretrained": True})
    with pytest.raises(ValueError, match="set from the data set"):
        build_backbone("timm:test_resnet", 3, 1, options={"num_classes": 5})
    with pytest.raises(ValueError, match="does not accept the model options"):
        build_backbone("timm:test_resnet", 3, 1, options={"no_such_option": 1})
    with pytest.raises(ValueError, match="apply to timm models"):
        build_backbone("resnet8", 3, 1, options={"embed_dim": 8})
    with pytest.raises(ValueError, match="'widths' applies to the small models"):
        build_backbone("timm:test_resnet", 3, 1, widths=[8, 8, 8])


def test_construction_leaves_model_state_and_rng_as_they_were():
    model = build_backbone("timm:test_resnet", 3, 1).train()
    model.layer1.eval()  # a mixed state, as with frozen BatchNorm
    modes = {name: m.training for name, m in model.named_modules()}
    rng = torch.get_rng_state()
    CSGNet.from_backbone(model)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert torch.equal(torch.get_rng_state(), rng)  # the head probe has its own generator

    def broken_head(activations):
        raise RuntimeError("boom")

    model.forward_head = broken_head  # a head that fails on the probe is not GAP → linear
    net = CSGNet.from_backbone(model)
    assert isinstance(net.head, ForwardHead)
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_hooks_and_modes_restored_after_errors():
    net, _, size = _net("vit_avg")
    net.train()
    method = CSGAttribution.from_net(net)
    with pytest.raises(ValueError, match="out of range"):
        method.attribute(torch.rand(2, 1, size, size), target=7)
    with pytest.raises(ValueError, match="img_size"):
        method.attribute(torch.rand(2, 1, 20, 20), target=0)
    assert not net.gated_layer._forward_hooks
    assert all(m.training for m in net.modules())
    assert method.attribute(torch.rand(2, 1, size, size), target=0).shape == (2, 1, 4, 4)


def test_parameters_are_owned_once_and_vit_stages():
    from csg_interp.training import scope_parameters
    from csg_interp.training.runs import feature_stages

    for key in ("resnet", "vit_avg", "vit_fc_norm"):
        net, model, _ = _net(key)
        assert sum(p.numel() for p in net.parameters()) == sum(
            p.numel() for p in model.parameters()
        ) + net.gate.weight.numel()
        assert len(net.state_dict()) == len(model.state_dict()) + 3  # + normalize mean/std, gate
    net, model, _ = _net("vit_avg")
    stages = feature_stages(net)
    assert len(stages) == 1 + VIT["depth"]  # embedding, then one per block
    last = {id(p) for p in scope_parameters(net, 1)}
    assert {id(p) for p in model.blocks[-1].parameters()} <= last
    assert {id(p) for p in model.head.parameters()} <= last
    assert not {id(p) for p in model.blocks[0].parameters()} & last


# ----------------------------------------------------------------------------- runs and commands
TINY_VIT_OPTIONS = [
    "img_size=8", "patch_size=4", "embed_dim=32", "depth=2", "num_heads=2", "mlp_ratio=2",
    "class_token=false", "global_pool=avg", "fc_norm=false", "dynamic_img_size=true",
]  # fmt: skip


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    """A CSG run of a tiny timm ViT on digits, trained through the command line (a few seconds)."""
    from csg_interp.cli import main

    out = tmp_path_factory.mktemp("vit") / "csg"
    threads = torch.get_num_threads()
    options = [arg for option in TINY_VIT_OPTIONS for arg in ("--model-option", option)]
    code = main([
        "train", "--dataset", "digits", "--model", "timm:vit_tiny_patch16_224", *options,
        "--epochs", "6", "--batch-size", "32", "--optimizer", "adamw", "--lr", "3e-3",
        "--csg-lr", "3e-3", "--weight-decay", "0.05",
        "--threads", "2", "--no-progress", "--out", str(out),
    ])  # fmt: skip
    torch.set_num_threads(threads)
    assert code == 0
    return out


def test_trained_vit_run_loads_back_with_its_options(vit_run):
    import json

    from csg_interp.training import load_run

    config = json.loads((vit_run / "config.json").read_text())
    options = config["model_options"]
    assert options["patch_size"] == 4 and options["fc_norm"] is False
    run = load_run(vit_run)
    assert isinstance(run.net.head, GAPLinearHead) and run.net.num_filters == 32
    assert run.manifest["result"]["test_acc"] > 0.3  # 6 epochs of a 32-channel ViT (chance 0.1)
    x = torch.as_tensor(run.load_data().test.images[:4]).float().div(255)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    assert run.net.features(x).shape == (4, 32, 2, 2)  # 8 px, 4 px patches: a 2×2 grid


def test_weights_load_a_local_timm_checkpoint(tmp_path):
    from safetensors.torch import save_file

    from csg_interp.training import TrainConfig, build_net

    options = dict(VIT_AVG, img_size=8, patch_size=2)
    source = build_backbone("timm:vit_tiny_patch16_224", 10, 1, options=options)
    meta = {"num_classes": 10, "in_channels": 1, "mean": [0.5], "std": [0.25]}
    for name in ("vit.pt", "vit.safetensors"):
        path = tmp_path / name
        if name.endswith(".pt"):
            torch.save(source.state_dict(), path)
        else:
            save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
        config = TrainConfig(
            dataset="digits", model="timm:vit_tiny_patch16_224", model_options=options,
            weights=str(path),
        ).resolved()  # fmt: skip
        net = build_net(config, meta)
        for key, value in source.state_dict().items():
            assert torch.equal(net.features.body.model.state_dict()[key], value), key


@pytest.mark.slow
def test_commands_accept_the_vit_without_special_cases(vit_run, tmp_path):
    import json

    from csg_interp.cli import main

    assert main(["filters", str(vit_run), "--jobs", "1"]) == 0
    assert (vit_run / "filters.csv").is_file()
    metrics = json.loads((vit_run / "metrics.json").read_text())
    assert len(metrics["mi_matrix"]) == 10 and len(metrics["mi_matrix"][0]) == 32
    assert main(["explain", str(vit_run), "--images", "0", "1", "--jobs", "1",
                 "--out", str(tmp_path / "explain")]) == 0  # fmt: skip
    assert main([
        "localize", str(vit_run), "--val-size", "16", "--test-size", "16", "--sweep-step", "0.25",
        "--overlays", "0", "--methods", "csg", "cam", "--device", "cpu",
        "--out", str(tmp_path / "loc"),
    ]) == 0  # fmt: skip
    loc = json.loads((tmp_path / "loc" / "metrics.json").read_text())
    assert 0.0 <= loc["models"]["csg"]["methods"]["csg"]["gt_known_loc"] <= 1.0
    assert main([
        "detect", str(vit_run), "--eps", "0.1", "--steps", "2", "--num-images", "32",
        "--fit-images", "64", "--device", "cpu", "--out", str(tmp_path / "det"),
    ]) == 0  # fmt: skip


@pytest.mark.parametrize("key", ["resnet", "convnext", "vit_fc_norm"])
def test_randomising_the_head_unit_changes_the_shared_classifier(key):
    # The sanity check's cascade re-initialises net.head first; the classifier it references is
    # owned by the features, so the head offers reset_parameters for it.
    from csg_interp.attribution.sanity import _randomize_

    net, model, size = _net(key)
    x = torch.rand(2, 1, size, size)
    before = net(x)
    classifier = model.get_classifier().weight.clone()
    _randomize_(net.head)
    assert not torch.equal(model.get_classifier().weight, classifier)
    assert not torch.allclose(net(x), before)


def test_gate_consistency_score_takes_signed_token_channels():
    from csg_interp.applications.detection import GateConsistencyScore, ModelOutputs

    gate = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # A ViT's pooled token channels are signed: the mass of a channel is its magnitude.
    outputs = ModelOutputs(torch.tensor([[-3.0, 1.0], [0.5, -0.5]]), torch.tensor([[1.0, 0.0]] * 2))
    assert GateConsistencyScore(gate).score(outputs).tolist() == [0.25, 0.5]
