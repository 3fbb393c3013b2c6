"""Presets, the epoch plan and the per-path learning rates (pure functions, no training)."""

from __future__ import annotations

import pytest
import torch

from csg_interp.training import EpochSchedule, TrainConfig


def test_reference_preset_is_the_reference_code_table():
    """csg-method §2/§4: 151 epochs, CSG iff epoch ≥ 10 and epoch % 3 ≥ 2 → 47 CSG epochs."""
    config = TrainConfig(preset="reference").resolved()
    assert (config.epochs, config.batch_size, config.lr, config.csg_lr, config.gate_lr) == (
        151, 32, 1e-5, 1e-3, 1e-3,
    )  # fmt: skip
    assert (config.lam, config.tau, config.warmup, config.period, config.csg_from) == (1e-3, 0.2, 10, 3, 2)
    plan = EpochSchedule(config)
    assert plan.kinds.count("csg") == 47 and plan.kinds.count("std") == 104
    assert plan.csg_epochs == list(range(11, 150, 3))
    assert plan.milestone_steps == [60, 90, 120]


def test_reference_learning_rates_step_only_in_their_own_epochs():
    plan = EpochSchedule(TrainConfig(preset="reference"))
    table = plan.table()
    # STD lr: 1e-5, then 1e-6 after global epoch 84, 1e-7 after 129 (the third milestone is never met)
    assert table[84]["std"] == pytest.approx(1e-5) and table[85]["std"] == pytest.approx(1e-6)
    assert table[129]["std"] == pytest.approx(1e-6) and table[130]["std"] == pytest.approx(1e-7)
    assert table[150]["std"] == pytest.approx(1e-7)
    # the CSG path never reaches its first milestone in 47 steps
    assert [row["csg"] for row in table] == pytest.approx([1e-3] * 151)
    assert [row["gate"] for row in table] == pytest.approx([1e-3] * 151)


def test_reference_std_baseline_decays_after_epochs_59_89_119():
    table = EpochSchedule(TrainConfig(preset="reference", gate=False)).table()
    assert {row["kind"] for row in table} == {"std"}
    drops = [e for e in range(1, 151) if table[e]["std"] < table[e - 1]["std"] * 0.5]
    assert drops == [60, 90, 120]
    assert table[0]["csg"] is None and table[0]["gate"] is None


@pytest.mark.parametrize("preset", ["scratch", "reference"])
@pytest.mark.parametrize("gate_decay", [True, False])
def test_learning_rates_equal_multisteplr_stepped_in_own_epochs(preset, gate_decay):
    """Our closed form equals one torch MultiStepLR per optimiser that steps at the end of its epochs."""
    config = TrainConfig(
        preset=preset, epochs=40, gate_decay=gate_decay, lr_schedule="multistep"
    ).resolved()
    plan = EpochSchedule(config)
    optimizers = {
        "std": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr),
        "csg": torch.optim.SGD(
            [{"params": [torch.zeros(1, requires_grad=True)], "lr": config.csg_lr},
             {"params": [torch.zeros(1, requires_grad=True)], "lr": config.gate_lr}]
        ),
    }  # fmt: skip
    schedulers = {
        name: torch.optim.lr_scheduler.MultiStepLR(opt, plan.milestone_steps, gamma=config.gamma)
        for name, opt in optimizers.items()
    }
    for epoch in range(config.epochs):
        rates = plan.learning_rates(epoch)
        assert rates["std"] == pytest.approx(optimizers["std"].param_groups[0]["lr"])
        assert rates["csg"] == pytest.approx(optimizers["csg"].param_groups[0]["lr"])
        expected_gate = optimizers["csg"].param_groups[1]["lr"] if gate_decay else config.gate_lr
        assert rates["gate"] == pytest.approx(expected_gate)
        name = plan.optimizer_for(plan.kind(epoch))
        optimizers[name].step()
        schedulers[name].step()


def test_scratch_preset_matches_the_prototype_at_12_epochs():
    config = TrainConfig().resolved()
    assert (config.epochs, config.gate_lr, config.tau, config.warmup) == (12, 5e-2, 0.1, 2)
    assert config.lam == 1e-2  # issue 4's sweep (experiments/README.md)
    assert EpochSchedule(config).csg_epochs == [2, 5, 8, 11]


@pytest.mark.parametrize("epochs", range(1, 31))
def test_scratch_runs_csg_epochs_at_every_length(epochs):
    plan = EpochSchedule(TrainConfig(epochs=epochs))
    assert plan.csg_epochs, epochs
    assert plan.kind(epochs - 1) == "csg"  # align="end": the last epoch trains the gate
    # every third epoch counted back from the last one, after the warm-up
    assert plan.csg_epochs == sorted(range(epochs - 1, plan.config.warmup - 1, -3))
    assert plan.config.warmup == round(epochs / 6 + 1e-9)


def test_joint_schedule_runs_every_epoch_joint_with_one_optimizer():
    plan = EpochSchedule(TrainConfig(schedule="joint", epochs=5))
    assert plan.kinds == ["joint"] * 5
    assert plan.optimizer_names == ["joint"]
    rates = plan.learning_rates(4)
    assert rates["csg"] is None and rates["gate"] == pytest.approx(5e-2)
    warm = EpochSchedule(TrainConfig(schedule="joint", epochs=5, warmup=2))
    assert warm.kinds == ["std", "std", "joint", "joint", "joint"]
    assert warm.optimizer_for("std") == "joint"


def test_std_twin_has_only_std_epochs():
    plan = EpochSchedule(TrainConfig(gate=False, epochs=7))
    assert plan.kinds == ["std"] * 7 and plan.optimizer_names == ["std"]
    plan.check_has_csg()  # an STD twin needs no CSG epoch


def test_a_schedule_without_csg_epoch_is_an_error_unless_allowed():
    config = TrainConfig(preset="reference", epochs=10)  # warm-up 10: no CSG epoch
    with pytest.raises(ValueError, match="no CSG epoch in 10 epoch.*--allow-no-csg"):
        EpochSchedule(config).check_has_csg()
    EpochSchedule(TrainConfig(preset="reference", epochs=10, allow_no_csg=True)).check_has_csg()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(preset="fast"), "unknown preset 'fast'"),
        (dict(schedule="mixed"), "unknown schedule 'mixed'"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(batch_size=1), "batch_size must be an integer ≥ 2"),
        (dict(lr=0.0), "lr must be a positive finite number"),
        (dict(gate_lr=float("nan")), "gate_lr must be a positive finite number"),
        (dict(lam=-1.0), "lam must be a finite number ≥ 0"),
        (dict(tau=1.5), r"tau is an L1-density bound and must lie in \[0, 1\]"),
        (dict(period=3, csg_from=3), r"csg_from must be an integer in \[0, period\)"),
        (dict(milestones=[0.8, 0.4]), "milestones are increasing fractions"),
        (dict(std_stages=0), "std_stages must be 'all' or a positive integer"),
        (dict(projection="l2"), "unknown projection 'l2'"),
        (dict(align="middle"), "align must be one of start, end"),
        (dict(augment="rotate"), "augment must be one of"),
        (dict(device="tpu"), "device must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_config_values_are_rejected_with_a_clear_message(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options).resolved()


def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(dataset="digits", model="smallcnn", epochs=4, widths=[8, 8, 8]).resolved()
    config.save(tmp_path / "config.json")
    again = TrainConfig.load(tmp_path / "config.json")
    assert again == config and again.is_resolved
    with pytest.raises(ValueError, match="unknown training option.*colour"):
        TrainConfig.from_dict({**config.to_dict(), "colour": "red"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.load(tmp_path / "bad.json")
