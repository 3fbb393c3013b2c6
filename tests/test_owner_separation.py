"""The owner-separation term (``TrainConfig.owner_separation``): its value by hand and against a
per-filter loop, what it trains, its config checks and CLI flag, and that the library's trainer
takes the same steps as the experiment trainer the campaign's models were trained with."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from csg_interp.training import TrainConfig, Trainer, load_bundle
from csg_interp.training.gate import gate_assignment
from csg_interp.training.losses import owner_separation_loss

ROOT = Path(__file__).resolve().parents[1]
DIGITS = dict(dataset="digits", model="smallcnn", device="cpu", seed=0, epochs=2, batch_size=64,
              channels_last=False)  # fmt: skip


def test_owner_separation_matches_a_hand_computation():
    """Owner 0: in (3, 1), out (0, 2): means 2 and 1, variances 2 and 2, snr 1/4; filter 2 fires
    less on its owner (relu → 0); filter 1's owner 2 has no image, so it is left out."""
    pooled = torch.tensor([[3.0, 5.0, 0.0], [1.0, 5.0, 0.0], [0.0, 1.0, 4.0], [2.0, 2.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    owners = torch.tensor([0, 2, 0])
    expected = -(0.5 * math.log(1.25) + 0.0) / 2
    assert float(owner_separation_loss(pooled, labels, owners, eps=0.0)) == pytest.approx(expected)
    assert float(owner_separation_loss(pooled, labels, torch.tensor([2, 2, 2]))) == 0.0


def test_owner_separation_equals_a_loop_over_filters():
    generator = torch.Generator().manual_seed(3)
    pooled = torch.randn(40, 7, generator=generator) + torch.arange(7.0)
    labels = torch.randint(0, 4, (40,), generator=generator)
    owners = torch.tensor([0, 1, 2, 3, 0, 1, 3])
    values = []
    for k in range(7):
        inside, outside = pooled[labels == owners[k], k], pooled[labels != owners[k], k]
        if len(inside) < 2 or len(outside) < 2:
            continue
        gap = torch.relu(inside.mean() - outside.mean())
        snr = gap**2 / (inside.var() + outside.var() + 1e-4)  # torch.var: unbiased
        values.append(0.5 * torch.log1p(snr))
    expected = -torch.stack(values).mean()
    assert float(owner_separation_loss(pooled, labels, owners)) == pytest.approx(float(expected), rel=1e-5)


def test_owner_separation_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"pooled \(N, K\), labels \(N,\) and owners \(K,\)"):
        owner_separation_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(2))


def test_owner_separation_gradient_reaches_the_activations_not_the_owners():
    pooled = torch.tensor([[3.0], [1.0], [0.0], [2.0]], requires_grad=True)
    gate = torch.tensor([[1.0], [0.2]], requires_grad=True)
    term = owner_separation_loss(pooled, torch.tensor([0, 0, 1, 1]), gate_assignment(gate.detach()))
    term.backward()
    assert gate.grad is None
    # Raising the owner's images and lowering the others widens the gap: the gradient says so.
    assert pooled.grad[:2].sum() < 0 < pooled.grad[2:].sum()


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_config_rejects_a_bad_weight(bad):
    with pytest.raises(ValueError, match="owner_separation must be a finite number ≥ 0"):
        TrainConfig(owner_separation=bad).resolved()


def test_config_rejects_the_term_without_a_gate():
    with pytest.raises(ValueError, match="needs the gate"):
        TrainConfig(owner_separation=0.1, gate=False).resolved()
    assert TrainConfig(owner_separation=0.0, gate=False).resolved().owner_separation == 0.0


def test_cli_flag_sets_the_weight():
    import argparse

    from csg_interp.commands import train as train_command
    from csg_interp.commands import train_options

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--owner-separation", "0.03", "--schedule", "joint"])
    config = train_options.config_from_args(args)
    assert (config.owner_separation, config.schedule) == (0.03, "joint")


@pytest.fixture(scope="module")
def digits_bundle():
    return load_bundle(TrainConfig(**DIGITS))


def _train(trainer_class, config, bundle, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = trainer_class(config, bundle=bundle, progress=False, **kwargs)
        run = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.mark.parametrize("schedule", ["joint", "alternate"])
def test_library_trainer_takes_the_experiment_trainers_steps(tmp_path, digits_bundle, schedule):
    """The campaign trained its owner-separation models with experiments/owner_separation.py
    (the term added through a hook on the objectives); the library's option gives the same
    weights, bit for bit, and the same per-epoch term."""
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from owner_separation import OwnerSeparationTrainer
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    weight = 0.5
    base = dict(DIGITS, schedule=schedule, warmup=0 if schedule == "alternate" else None)
    library = _train(Trainer, TrainConfig(**base, owner_separation=weight,
                                          out=str(tmp_path / "library")).resolved(),
                     digits_bundle)  # fmt: skip
    experiment = _train(OwnerSeparationTrainer,
                        TrainConfig(**base, out=str(tmp_path / "experiment")).resolved(),
                        digits_bundle, own_weight=weight)  # fmt: skip
    ours, theirs = library.net.state_dict(), experiment.net.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    kinds = [row["kind"] for row in library.history]
    assert "std" not in kinds if schedule == "joint" else "csg" in kinds
    for row, their_row in zip(library.history, experiment.history):
        assert row["loss"] == pytest.approx(their_row["loss"], rel=1e-12)
        if row["kind"] == "std":
            assert row["owner_separation"] is None
        else:  # the library logs w · term per image, the experiment the term per step
            assert row["owner_separation"] < 0
            assert row["owner_separation"] / weight == pytest.approx(their_row["owner_separation"],
                                                                     rel=0.05)  # fmt: skip


def test_runs_without_the_term_log_no_owner_separation(tmp_path, digits_bundle):
    run = _train(Trainer, TrainConfig(**DIGITS, out=str(tmp_path / "run")).resolved(), digits_bundle)
    assert all("owner_separation" not in row for row in run.history)
    assert run.config.owner_separation == 0.0


def test_a_step_with_the_term_leaves_no_hook_and_logs_the_weighted_term(tmp_path, digits_bundle):
    config = TrainConfig(**DIGITS, schedule="joint", owner_separation=2.0, out=str(tmp_path / "r"))
    trainer = Trainer(config.resolved(), bundle=digits_bundle, progress=False)
    images, labels = digits_bundle.train.tensors(torch.arange(64))
    features = trainer.net.train().features  # train_epoch's mode: batch statistics
    owners = gate_assignment(trainer.net.gate.weight.detach())
    with torch.no_grad():
        expected = 2.0 * float(owner_separation_loss(features(images).mean(dim=(2, 3)), labels, owners))
    parts = trainer.train_step("joint", images, labels)
    assert not features._forward_hooks
    assert expected < 0 and parts["owner_separation"] == pytest.approx(expected, rel=1e-5)
