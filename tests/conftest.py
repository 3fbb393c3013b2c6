"""Shared fixtures. Tests run on 2 CPU cores: keep models tiny and data small."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)
    yield


@pytest.fixture
def small_net():
    """A gated CSGNet with 3 classes and K = 5 filters on a 4×4 grid for 16×16 inputs (GAP →
    linear head), its gate drawn from ``torch.rand`` under seed 0, in eval mode."""
    from csg_interp.models import SmallCNN
    from csg_interp.training import CSGNet

    torch.manual_seed(0)
    net = CSGNet.from_backbone(SmallCNN(num_classes=3, in_channels=1, widths=(4, 4, 5)),
                               num_classes=3)  # fmt: skip
    with torch.no_grad():
        net.gate.weight.copy_(torch.rand(3, 5))
    return net.eval()


# The tiny pair pins the recipe it was made with (Adam 1e-3, MultiStepLR, λ 1e-3), so the figures
# and baselines built on it keep their values when the scratch preset moves.
TINY_DIGITS_OPTIONS = dict(
    dataset="digits", model="smallcnn", epochs=3, batch_size=32, gate_lr=0.1, lam=1e-3, seed=0,
    optimizer="adam", lr=1e-3, csg_lr=1e-3, weight_decay=0.0, lr_schedule="multistep",
    channels_last=False,
)


@pytest.fixture(scope="session")
def tiny_digits_pair(tmp_path_factory):
    """Run directories of a CSG and an STD smallcnn trained on digits (a few seconds in all).

    Returns ``{"csg": Path, "std": Path}``; load them with ``csg_interp.training.load_run``.
    The CSG run has 3 epochs (STD, STD, CSG: one CSG epoch, gate lr 0.1, so the gate is
    sparse-ish, L1-density ≈ 0.3); the STD twin has the same seed, data and epochs, no gate.
    """
    from csg_interp.training import TrainConfig, fit, load_bundle

    root = tmp_path_factory.mktemp("tiny_digits_pair")
    bundle = load_bundle(TrainConfig(**TINY_DIGITS_OPTIONS))
    runs = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: 2 threads on a busy 2-core machine is ~10x slower
    try:
        for name, gate in (("csg", True), ("std", False)):
            config = TrainConfig(**TINY_DIGITS_OPTIONS, gate=gate, out=str(root / name))
            runs[name] = fit(config, bundle=bundle, progress=False).run_dir
    finally:
        torch.set_num_threads(threads)
    return runs
