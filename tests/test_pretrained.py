"""Existing and pretrained models: local weights with a new head, frozen BatchNorm, gate-only
training on a frozen network, attaching a given (e.g. MI-derived) gate.

Weights files are state dicts saved from randomly initialised torchvision models (no downloads).
"""

from __future__ import annotations

import urllib.error
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from csg_interp.models import build_backbone
from csg_interp.training import CSGNet, GAPLinearHead
from csg_interp.training.pretrained import (
    attach_gate,
    fit_gate_only,
    freeze_batchnorm,
    load_pretrained,
    read_state_dict,
    resolve_weights,
)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.manual_seed(0)
    source = build_backbone("resnet18", num_classes=1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(source.state_dict(), path)
    return path, source.state_dict()


def test_new_head_for_the_data_sets_classes(resnet18_file) -> None:
    path, source = resnet18_file
    model = build_backbone("resnet18", num_classes=7)
    fresh_head = model.fc.weight.detach().clone()
    report = load_pretrained(model, path)
    assert report.new_head == ["fc.weight", "fc.bias"] and report.adapted == []
    state = model.state_dict()
    for key, value in source.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key
    assert torch.equal(model.fc.weight, fresh_head) and model.fc.out_features == 7
    assert len(report.loaded) == len(source) - 2


def test_same_classes_loads_the_head_too(resnet18_file) -> None:
    path, source = resnet18_file
    model = build_backbone("resnet18", num_classes=1000)
    assert load_pretrained(model, path).new_head == []
    assert torch.equal(model.fc.weight, source["fc.weight"])


def test_resnet50_round_trip_and_a_224px_csg_forward(tmp_path: Path) -> None:
    source = build_backbone("resnet50", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r50.pt")
    model = build_backbone("resnet50", num_classes=3)
    load_pretrained(model, tmp_path / "r50.pt")
    assert torch.equal(model.layer4[2].conv3.weight, source.layer4[2].conv3.weight)
    net = CSGNet.from_backbone(model, normalize=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    assert net.num_filters == 2048
    std, csg = net.eval()(torch.rand(2, 3, 224, 224), torch.tensor([0, 2]))
    assert std.shape == csg.shape == (2, 3)


def test_grey_input_adapts_the_first_conv_by_summing_rgb(tmp_path: Path) -> None:
    source = build_backbone("resnet18", num_classes=5).eval()
    torch.save(source.state_dict(), tmp_path / "rgb.pt")
    grey_model = build_backbone("resnet18", num_classes=5, in_channels=1).eval()
    report = load_pretrained(grey_model, tmp_path / "rgb.pt")
    assert report.adapted == ["conv1.weight"]
    assert torch.allclose(grey_model.conv1.weight, source.conv1.weight.sum(1, keepdim=True))
    x = torch.rand(2, 1, 64, 64)
    # A grey image fed to the adapted model == the same image on all three RGB channels.
    torch.testing.assert_close(grey_model(x), source(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


def test_wrapped_and_ddp_prefixed_files(tmp_path: Path) -> None:
    source = build_backbone("resnet8", num_classes=10, in_channels=1)
    wrapped = {"state_dict": OrderedDict((f"module.{k}", v) for k, v in source.state_dict().items())}
    torch.save(wrapped, tmp_path / "ddp.pt")
    assert sorted(read_state_dict(tmp_path / "ddp.pt")) == sorted(source.state_dict())
    model = build_backbone("resnet8", num_classes=10, in_channels=1)
    load_pretrained(model, tmp_path / "ddp.pt")
    assert torch.equal(model.layer3[0].conv2.weight, source.layer3[0].conv2.weight)


@pytest.mark.parametrize("form", ["run_checkpoint", "exported"])
def test_weights_from_a_trained_csg_run_or_an_exported_network(tmp_path: Path, form: str) -> None:
    source = build_backbone("resnet8", num_classes=10, in_channels=1)
    net = CSGNet.from_backbone(source, normalize=((0.2,), (0.3,)))
    if form == "run_checkpoint":  # csg-interp train's last.pt holds the CSGNet under "model"
        torch.save({"format": "csg_interp.checkpoint", "model": net.state_dict()}, tmp_path / "w.pt")
    else:  # csg-interp export: the plain network features → head
        torch.save(net.plain_network().state_dict(), tmp_path / "w.pt")
    model = build_backbone("resnet8", num_classes=4, in_channels=1)
    report = load_pretrained(model, tmp_path / "w.pt")
    assert report.new_head == ["head.linear.weight", "head.linear.bias"]
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.state_dict()[key], value), key


class _Payload:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def test_bad_weight_files(tmp_path: Path, resnet18_file) -> None:
    with pytest.raises(FileNotFoundError, match="not a torchvision weights name"):
        load_pretrained(build_backbone("resnet18", 10), tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="pass --weights PATH"):
        read_state_dict(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="missing .*layer1.*; unexpected none"):
        load_pretrained(build_backbone("resnet34", 10), resnet18_file[0])
    small = build_backbone("resnet8", 10, 1, widths=(8, 16, 32))
    torch.save(small.state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(ValueError, match="shapes differ outside the head: conv1.weight"):
        load_pretrained(build_backbone("resnet8", 10, 3), tmp_path / "narrow.pt")
    sentinel = tmp_path / "pwned"
    torch.save({"weight": _Payload(sentinel)}, tmp_path / "payload.pt")
    with pytest.raises(ValueError, match="was refused"):
        load_pretrained(build_backbone("resnet8", 10, 1), tmp_path / "payload.pt")
    assert not sentinel.exists()
    torch.save({"weight": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(ValueError, match="'weight' is a list, not a tensor"):
        read_state_dict(tmp_path / "list.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="refused|corrupt"):
        read_state_dict(tmp_path / "text.pt")


def test_torchvision_weights_name_without_internet_says_what_to_do(monkeypatch) -> None:
    from torchvision.models._api import WeightsEnum

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(FileNotFoundError, match="download https://.*resnet18.* elsewhere"):
        resolve_weights("ResNet18_Weights.IMAGENET1K_V1")
    with pytest.raises(FileNotFoundError, match="could not download ResNet50_Weights.IMAGENET1K_V2"):
        resolve_weights("IMAGENET1K_V2", model_name="resnet50")


def test_freeze_batchnorm_stops_statistics_and_gradients() -> None:
    model = build_backbone("resnet8", num_classes=4, in_channels=1).train()
    assert freeze_batchnorm(model.layer1) == 2
    with pytest.raises(ValueError, match="not the layer itself"):
        freeze_batchnorm(model.bn1)
    frozen_stats = model.layer1[0].bn1.running_mean.clone()
    live_stats = model.layer2[0].bn1.running_mean.clone()
    model(torch.rand(8, 1, 16, 16)).sum().backward()
    assert torch.equal(model.layer1[0].bn1.running_mean, frozen_stats)
    assert not torch.equal(model.layer2[0].bn1.running_mean, live_stats)
    assert not any("layer1" in name and "bn" in name for name, _ in model.named_parameters())
    # A frozen layer normalises with its running statistics in train mode too.
    bn = nn.BatchNorm2d(3).eval()
    bn.running_mean.uniform_()
    bn.running_var.uniform_(0.5, 2)
    holder = nn.Sequential(bn)
    x = torch.randn(4, 3, 5, 5)
    expected = bn(x)
    freeze_batchnorm(holder)
    torch.testing.assert_close(holder.train()(x), expected)


def _class_channel_data(n: int = 90, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c lights up channel c; the other channels carry weaker noise."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    x = 0.3 * torch.rand(n, classes, 4, 4, generator=generator)
    x[torch.arange(n), labels] += 1.0
    return x, labels


def _identity_head_net(gap_head: bool) -> CSGNet:
    linear = nn.Linear(3, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(3))
        linear.bias.zero_()
    head = GAPLinearHead(linear) if gap_head else nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), linear)
    return CSGNet(nn.ReLU(), head, num_classes=3, num_filters=3)


def test_gate_only_training_differentiates_filters_and_leaves_the_network_alone() -> None:
    x, y = _class_channel_data()
    net = _identity_head_net(gap_head=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    history = fit_gate_only(net, (x, y), epochs=15, lr=0.05, tau=0.1, lam=1e-3, batch_size=16)
    gate = net.gate.weight.detach()
    # Filter k only helps class k (W = I): its column keeps class k and closes the others.
    assert net.gate.assignment().tolist() == [0, 1, 2]
    assert torch.equal(gate.diagonal(), torch.ones(3))
    assert gate[~torch.eye(3, dtype=torch.bool)].max() < 0.5
    assert history[-1]["density"] < history[0]["density"] and history[-1]["loss"] < history[0]["loss"]
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(p.requires_grad for n, p in net.named_parameters())
    assert net.training


def test_gate_only_cached_pooled_features_equal_the_per_batch_path() -> None:
    x, y = _class_channel_data(40)
    cached, per_batch = _identity_head_net(True), _identity_head_net(False)
    fit_gate_only(cached, (x, y), epochs=3, lr=0.05, batch_size=8, seed=3)
    fit_gate_only(per_batch, (x, y), epochs=3, lr=0.05, batch_size=8, seed=3)
    torch.testing.assert_close(cached.gate.weight, per_batch.gate.weight, rtol=1e-5, atol=1e-6)


def test_gate_only_bad_input() -> None:
    net = _identity_head_net(True)
    x, y = _class_channel_data(6)
    with pytest.raises(ValueError, match="label 3 is out of range"):
        fit_gate_only(net, (x, y + 1), epochs=1)
    with pytest.raises(ValueError, match="epochs must be"):
        fit_gate_only(net, (x, y), epochs=0)


def test_attach_gate_sets_the_gate_and_keeps_the_std_path() -> None:
    net = CSGNet.from_backbone(build_backbone("smallcnn", 3, 1), gate=False).eval()
    x = torch.rand(4, 1, 8, 8)
    reference = net(x)
    weight = torch.rand(3, 32)
    attach_gate(net, weight)
    assert torch.equal(net.gate.weight.detach(), weight)
    assert torch.equal(net(x), reference)
    std, csg = net(x, torch.tensor([0, 1, 2, 0]))
    assert torch.equal(std, reference) and not torch.equal(csg, reference)
    with pytest.raises(ValueError, match=r"expected \(num_classes, num_filters\) = \(3, 32\)"):
        attach_gate(net, torch.rand(32, 3))
    with pytest.raises(ValueError, match="lie in \\[0, 1\\]"):
        attach_gate(net, torch.full((3, 32), 1.5))


# ------------------------------------------------------------- through the trainer
def _reference_trainer(out: Path, weights: Path, **options):
    from csg_interp.data import load_dataset
    from csg_interp.training import Trainer, TrainConfig

    bundle = load_dataset("digits")
    bundle.train, bundle.val = bundle.train.subset(range(48)), bundle.val.subset(range(16))
    bundle.test = bundle.test.subset(range(16))
    config = TrainConfig(
        dataset="digits", model="resnet8", widths=[8, 8, 16], preset="reference", epochs=3,
        warmup=1, period=2, csg_from=1, batch_size=16, weights=str(weights), out=str(out),
        device="cpu", **options,
    ).resolved()  # fmt: skip
    return Trainer(config, bundle=bundle, progress=False)


def test_fine_tuning_from_weights_with_frozen_batchnorm(tmp_path: Path) -> None:
    from csg_interp.training import load_run

    source = build_backbone("resnet8", num_classes=1000, in_channels=1, widths=(8, 8, 16))
    for module in source.modules():  # non-trivial statistics to keep
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    torch.save(source.state_dict(), tmp_path / "source.pt")
    trainer = _reference_trainer(tmp_path / "run", tmp_path / "source.pt", freeze_bn=True)
    body = trainer.net.features.body
    assert torch.equal(body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert trainer.net.linear_head.out_features == 10  # a new head for digits' classes
    trainer.fit()
    assert [row["kind"] for row in trainer.history] == ["std", "csg", "std"]
    # reference preset: STD path trains layer2, layer3 + fc; CSG path layer3 + fc + gate.
    # The stem and layer1 are frozen: weights and (with --freeze-bn) BatchNorm statistics.
    assert torch.equal(body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert torch.equal(body.layer1[0].bn1.running_mean, source.layer1[0].bn1.running_mean)
    assert torch.equal(body.bn1.running_var, source.bn1.running_var)
    assert not torch.equal(body.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert not torch.equal(body.layer3[0].bn1.running_mean, source.layer3[0].bn1.running_mean)
    run = load_run(tmp_path / "run")  # the frozen layers are rebuilt from the config
    for key, value in trainer.net.state_dict().items():
        assert torch.equal(run.net.state_dict()[key], value.cpu()), key


def test_without_freeze_bn_frozen_stages_keep_updating_statistics(tmp_path: Path) -> None:
    source = build_backbone("resnet8", num_classes=10, in_channels=1, widths=(8, 8, 16))
    torch.save(source.state_dict(), tmp_path / "source.pt")
    trainer = _reference_trainer(tmp_path / "run", tmp_path / "source.pt")
    trainer.fit()
    body = trainer.net.features.body
    assert torch.equal(body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)  # frozen
    assert not torch.equal(body.layer1[0].bn1.running_mean, source.layer1[0].bn1.running_mean)


def test_freeze_bn_needs_untrained_stages(tmp_path: Path) -> None:
    from csg_interp.data import load_dataset
    from csg_interp.training import Trainer, TrainConfig

    config = TrainConfig(dataset="digits", model="resnet8", epochs=3, freeze_bn=True,
                         out=str(tmp_path / "r")).resolved()  # scratch: STD path trains 'all'
    with pytest.raises(ValueError, match="--freeze-bn freezes the BatchNorm of the stages no path"):
        Trainer(config, bundle=load_dataset("digits"), progress=False)


def test_gate_only_run_from_a_trained_std_run(tmp_path: Path) -> None:
    from csg_interp.data import load_dataset
    from csg_interp.training import Trainer, TrainConfig, load_run

    bundle = load_dataset("digits")
    bundle.train, bundle.val = bundle.train.subset(range(64)), bundle.val.subset(range(32))
    bundle.test = bundle.test.subset(range(32))
    common = dict(dataset="digits", model="smallcnn", widths=[8, 8, 16], batch_size=16, device="cpu")
    std = Trainer(TrainConfig(**common, epochs=2, gate=False, out=str(tmp_path / "std")).resolved(),
                  bundle=bundle, progress=False)
    std.fit()
    config = TrainConfig(**common, epochs=3, gate_only=True, gate_lr=0.05,
                         weights=str(tmp_path / "std" / "last.pt"), out=str(tmp_path / "gated"))
    gated = Trainer(config.resolved(), bundle=bundle, progress=False)
    gated.fit()
    assert [row["kind"] for row in gated.history] == ["csg", "csg", "csg"]
    assert gated.history[-1]["gate_density"] < 1.0
    # The network is the STD run's, untouched: same weights, same BatchNorm statistics.
    run, std_run = load_run(tmp_path / "gated"), load_run(tmp_path / "std")
    mine, theirs = run.net.state_dict(), std_run.net.state_dict()
    for key, value in theirs.items():
        if not key.endswith("num_batches_tracked"):  # FrozenBatchNorm2d has no counter
            assert torch.equal(mine[key], value), key
    x, _ = bundle.test.tensors()
    with torch.no_grad():  # FrozenBatchNorm2d folds the statistics: float rounding only
        torch.testing.assert_close(run.net(x), std_run.net(x), rtol=1e-5, atol=1e-6)
    assert run.has_gate and run.net.gate.weight.shape == (10, 16)
    with pytest.raises(ValueError, match="--gate-only needs the trained network: --weights PATH"):
        TrainConfig(**common, gate_only=True, out="x").resolved()
    with pytest.raises(ValueError, match="needs the gate"):
        TrainConfig(**common, gate_only=True, gate=False, weights="w.pt", out="x").resolved()


def test_reference_paths_on_a_torchvision_resnet_are_layer3_layer4_fc_and_layer4_fc() -> None:
    from csg_interp.training import TrainConfig, build_net, scope_parameters

    config = TrainConfig(dataset="folder", model="resnet18", preset="reference").resolved()
    net = build_net(config, {"num_classes": 5, "in_channels": 3, "mean": (0.5,) * 3, "std": (0.2,) * 3})
    body = net.features.body

    def ids(*modules):
        return {id(p) for m in modules for p in m.parameters()}

    assert {id(p) for p in scope_parameters(net, config.std_stages)} == ids(body.layer3, body.layer4, net.head)
    assert {id(p) for p in scope_parameters(net, config.csg_stages)} == ids(body.layer4, net.head)
