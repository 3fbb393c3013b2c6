"""The leak-penalty extension (TrainConfig.leak_weight): the term by hand and inside a train step."""

from __future__ import annotations

import pytest
import torch

from csg_interp.training import TrainConfig
from csg_interp.training.losses import leak_penalty
from csg_interp.training.trainer import Trainer


def test_leak_penalty_by_hand_and_gate_gets_no_gradient():
    pooled = torch.tensor([[1.0, 3.0], [2.0, 2.0]], requires_grad=True)
    gate = torch.tensor([[1.0, 0.0], [0.5, 1.0]], requires_grad=True)
    # sample 0 (class 0): closed share (0·1 + 1·3) / 4 = 0.75; sample 1 (class 1): 0.5·2 / 4 = 0.25
    value = leak_penalty(pooled, gate, torch.tensor([0, 1]))
    assert float(value.detach()) == pytest.approx(0.5, abs=1e-6)
    value.backward()
    assert gate.grad is None and pooled.grad is not None


def test_leak_weight_is_validated():
    with pytest.raises(ValueError, match="leak_weight"):
        TrainConfig(dataset="digits", model="smallcnn", leak_weight=-1.0).resolved()


@pytest.mark.parametrize("schedule, kind", [("joint", "joint"), ("alternate", "csg")])
def test_train_step_adds_the_weighted_leak_term(tmp_path, schedule, kind):
    options = dict(dataset="digits", model="smallcnn", epochs=3, batch_size=16, seed=0,
                   schedule=schedule, device="cpu")  # fmt: skip
    plain = Trainer(TrainConfig(**options, out=str(tmp_path / "plain")), progress=False)
    leaky = Trainer(TrainConfig(**options, leak_weight=0.5, out=str(tmp_path / "leak")),
                    progress=False)  # fmt: skip
    images, labels = plain.bundle.train.tensors(torch.arange(16))
    for trainer in (plain, leaky):
        trainer.net.train()
        with torch.no_grad():  # make the gate non-trivial, identically in both
            trainer.net.gate.weight.copy_(torch.linspace(0, 1, trainer.net.gate.weight.numel())
                                          .view_as(trainer.net.gate.weight))
    for mine, theirs in zip(leaky.net.parameters(), plain.net.parameters()):
        torch.testing.assert_close(mine, theirs)  # same seed, same initialisation
    with torch.no_grad():
        pooled = leaky.net.features(images).mean(dim=(2, 3))
        expected = 0.5 * float(leak_penalty(pooled, leaky.net.gate.weight, labels))
    assert expected > 0
    loss_plain = plain.train_step(kind, images, labels)["loss"]
    loss_leaky = leaky.train_step(kind, images, labels)["loss"]
    assert loss_leaky - loss_plain == pytest.approx(expected, rel=1e-4, abs=1e-6)
