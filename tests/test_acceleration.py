"""Mixed precision (bf16 on CPU; fp16 on CUDA only), channels-last, the pinned/worker batch loader."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from csg_interp.data import load_dataset
from csg_interp.models import build_backbone
from csg_interp.training import CSGNet
from csg_interp.training.acceleration import BatchLoader, MixedPrecision, to_channels_last

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _net() -> CSGNet:
    torch.manual_seed(0)
    return CSGNet.from_backbone(build_backbone("resnet8", 4, 1, widths=(8, 8, 16)))


def _grads(net: CSGNet, x, y, amp: MixedPrecision) -> dict[str, torch.Tensor]:
    net.zero_grad()
    with amp.autocast():
        std, csg = net(x, y)
        loss = F.cross_entropy(csg, y) + F.cross_entropy(std, y)
    assert loss.dtype == torch.float32  # autocast keeps the loss in float32
    amp.backward(loss)
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_bf16_autocast_on_cpu_runs_in_bf16_and_keeps_fp32_parameters() -> None:
    net = _net().train()
    x, y = torch.rand(8, 1, 16, 16), torch.arange(8) % 4
    amp = MixedPrecision("bf16", "cpu")
    with amp.autocast():
        features = net.features(x)
    assert features.dtype == torch.bfloat16
    low = _grads(net, x, y, amp)
    full = _grads(net, x, y, MixedPrecision("none", "cpu"))
    assert low.keys() == full.keys() and "gate.weight" in low
    assert all(p.dtype == torch.float32 for p in net.parameters())
    # bf16 gradients (8-bit mantissa) point the same way as float32 ones: measured 0.987 here.
    flat_low = torch.cat([g.flatten() for g in low.values()])
    flat_full = torch.cat([g.flatten() for g in full.values()])
    assert F.cosine_similarity(flat_low, flat_full, dim=0) > 0.95
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    assert amp.step(optimizer) is True


def test_amp_options_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown --amp 'fp8'"):
        MixedPrecision("fp8", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            MixedPrecision("fp16", "cpu")
    assert MixedPrecision("none", "cpu").state_dict() == {}


@needs_cuda
def test_fp16_on_cuda_scales_and_steps() -> None:  # pragma: no cover - runs on GPU machines
    net = _net().cuda()
    x, y = torch.rand(8, 1, 16, 16, device="cuda"), torch.arange(8, device="cuda") % 4
    amp = MixedPrecision("fp16", "cuda")
    _grads(net, x, y, amp)
    assert amp.step(torch.optim.Adam(net.parameters(), lr=1e-3)) in (True, False)
    assert "scale" in amp.state_dict()


def test_channels_last_keeps_the_outputs() -> None:
    net = _net().eval()
    x = torch.rand(4, 1, 16, 16)
    reference = net(x)
    to_channels_last(net)
    conv = net.features.body.conv1 if hasattr(net.features, "body") else net.features.conv1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    out = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_loader_yields_exactly_the_sampled_batches(workers: int) -> None:
    train = load_dataset("digits").train
    batches = [torch.tensor([5, 1, 9]), torch.tensor([0, 2]), torch.tensor([7, 3, 4, 8])]
    loader = BatchLoader(train, batches, workers=workers, pin_memory=True)
    assert len(loader) == 3
    for (images, labels), index in zip(loader, batches):
        expected_images, expected_labels = train.tensors(index)
        assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)
        assert images.is_pinned() == torch.cuda.is_available()
    with pytest.raises(ValueError, match="workers must be"):
        BatchLoader(train, batches, workers=-1)


# ----------------------------------------------------------- through the trainer (CPU)
def _tiny_bundle():
    bundle = load_dataset("digits")
    bundle.train = bundle.train.subset(range(64))
    bundle.val, bundle.test = bundle.val.subset(range(32)), bundle.test.subset(range(32))
    return bundle


def _trainer(out, **options):
    from csg_interp.training import Trainer, TrainConfig

    config = TrainConfig(
        dataset="digits", model="smallcnn", widths=[8, 8, 16], epochs=2, batch_size=16,
        augment="flip_shift", out=str(out), device="cpu", seed=1, **options,
    ).resolved()  # fmt: skip
    return Trainer(config, bundle=_tiny_bundle(), progress=False)


def _fitted_state(out, **options):
    trainer = _trainer(out, **options)
    trainer.fit()
    return trainer, {k: v.clone() for k, v in trainer.net.state_dict().items()}


def test_trainer_workers_change_speed_not_results(tmp_path) -> None:
    _, serial = _fitted_state(tmp_path / "w0")
    _, parallel = _fitted_state(tmp_path / "w2", workers=2)
    assert serial.keys() == parallel.keys()
    assert all(torch.equal(serial[k], parallel[k]) for k in serial)


def test_trainer_channels_last_and_bf16_on_cpu(tmp_path) -> None:
    reference, plain = _fitted_state(tmp_path / "fp32", channels_last=False)
    nhwc, last = _fitted_state(tmp_path / "nhwc", channels_last=True)
    conv = [m for m in nhwc.net.modules() if isinstance(m, torch.nn.Conv2d)][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # Same computation in another memory layout: float rounding only. (Parameters are not
    # compared one by one: a conv bias before BatchNorm gets a ~0 gradient, which Adam
    # normalises into rounding noise; the function the network computes is what matters.)
    for row, other in zip(reference.history, nhwc.history):
        assert other["loss"] == pytest.approx(row["loss"], rel=1e-4)
    x, _ = reference.bundle.val.tensors()
    with torch.no_grad():
        torch.testing.assert_close(nhwc.net.eval()(x), reference.net.eval()(x), rtol=1e-3, atol=1e-3)
    bf16, state = _fitted_state(tmp_path / "bf16", amp="bf16")
    assert all(v.dtype == plain[k].dtype for k, v in state.items())  # parameters stay float32
    first, first_fp32 = bf16.history[0]["loss"], reference.history[0]["loss"]
    assert abs(first - first_fp32) < 0.05 * first_fp32  # measured: well under 1 % here
    assert bf16.history[-1]["kind"] == "csg" and 0 < bf16.history[-1]["gate_density"] < 1


def test_trainer_rejects_fp16_without_cuda(tmp_path) -> None:
    if torch.cuda.is_available():
        pytest.skip("fp16 is valid on this machine")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        _trainer(tmp_path / "fp16", amp="fp16")
    from csg_interp.training import TrainConfig

    with pytest.raises(ValueError, match="amp must be one of none, bf16, fp16"):
        TrainConfig(dataset="digits", amp="int8").resolved()
    with pytest.raises(ValueError, match="workers must be an integer"):
        TrainConfig(dataset="digits", workers=-1).resolved()
