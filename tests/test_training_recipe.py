"""The training recipe: per-step schedules, optimisers, weight-decay groups, label smoothing,
config schemas (old runs keep their values), and the recipe's bad inputs.

The resume tests of tests/test_trainer_resume.py run with the default preset, i.e. the one-cycle
SGD recipe: they check that a resumed per-step schedule equals an uninterrupted run exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from csg_interp.training import EpochSchedule, TrainConfig, Trainer, fit, load_run
from csg_interp.training.losses import csg_objective, joint_objective, std_objective
from csg_interp.training.optim import weight_decay_groups

ROOT = Path(__file__).resolve().parents[1]
SCENES_PAIR = ROOT / "benchmarks" / "assets" / "scenes_pair"


# ------------------------------------------------------------------ schedules
def _torch_onecycle(total: int, max_lr: float, pct: float):
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=max_lr, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total, pct_start=pct
    )
    return optimizer, scheduler


def test_onecycle_equals_torch_onecyclelr_step_by_step_for_the_std_twin():
    config = TrainConfig(gate=False, epochs=4).resolved()
    plan = EpochSchedule(config, steps_per_epoch=7)
    optimizer, scheduler = _torch_onecycle(28, config.lr, config.lr_warmup)
    for epoch in range(4):
        for step in range(7):
            group = optimizer.param_groups[0]
            assert plan.learning_rates(epoch, step)["std"] == pytest.approx(group["lr"], rel=1e-9)
            assert plan.momentum("std", epoch, step) == pytest.approx(group["momentum"], rel=1e-9)
            optimizer.step()
            scheduler.step()


def test_with_alternation_each_onecycle_advances_only_over_its_own_steps():
    config = TrainConfig(epochs=12).resolved()  # CSG epochs 2, 5, 8, 11
    plan = EpochSchedule(config, steps_per_epoch=5)
    assert plan.csg_epochs == [2, 5, 8, 11]
    torch_std = _torch_onecycle(8 * 5, config.lr, config.lr_warmup)
    torch_csg = _torch_onecycle(4 * 5, config.csg_lr, config.lr_warmup)
    for epoch in range(12):
        kind = plan.kind(epoch)
        for step in range(5):
            rates = plan.learning_rates(epoch, step)
            if epoch < 10:  # after its last own step (epoch 10) the STD rate is not used
                assert rates["std"] == pytest.approx(torch_std[0].param_groups[0]["lr"], rel=1e-9)
            assert rates["csg"] == pytest.approx(torch_csg[0].param_groups[0]["lr"], rel=1e-9)
            assert rates["gate"] == pytest.approx(config.gate_lr)  # constant (gate_decay off)
            optimizer, scheduler = torch_std if kind == "std" else torch_csg
            optimizer.step()
            scheduler.step()


def test_cosine_schedule_hand_values():
    config = TrainConfig(gate=False, epochs=2, lr_schedule="cosine", lr_warmup=0.25, lr=1.0).resolved()
    plan = EpochSchedule(config, steps_per_epoch=10)  # 20 steps, 5 of warm-up
    rates = [plan.learning_rates(s // 10, s % 10)["std"] for s in range(20)]
    assert rates[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rates[5] == pytest.approx(1.0)  # cosine starts at its peak
    assert rates[10] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 15)))
    assert rates[19] == pytest.approx(0.5 * (1 + math.cos(math.pi * 14 / 15)))


def test_gate_decay_makes_the_gate_follow_its_owner_schedule():
    config = TrainConfig(epochs=12, gate_decay=True).resolved()
    plan = EpochSchedule(config, steps_per_epoch=3)
    for epoch, step in [(2, 0), (5, 1), (11, 2)]:
        rates = plan.learning_rates(epoch, step)
        assert rates["gate"] / config.gate_lr == pytest.approx(rates["csg"] / config.csg_lr)


# ----------------------------------------------------------------- optimisers
def _tiny_trainer(tmp_path, **options):
    config = TrainConfig(dataset="digits", model="smallcnn", epochs=3, 
                         out=str(tmp_path / "run"), **options)  # fmt: skip
    return Trainer(config, progress=False)


def test_weight_decay_skips_batchnorm_biases_and_the_gate(tmp_path):
    trainer = _tiny_trainer(tmp_path)
    assert set(trainer.optimizers) == {"std", "csg", "gate"}
    for name in ("std", "csg"):
        optimizer = trainer.optimizers[name]
        assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"]
        decayed, free = optimizer.param_groups
        assert decayed["weight_decay"] == pytest.approx(5e-4) and free["weight_decay"] == 0.0
        assert all(p.dim() >= 2 for p in decayed["params"]) and decayed["params"]
        assert all(p.dim() < 2 for p in free["params"]) and free["params"]
    bn = [m for m in trainer.net.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    free_ids = {id(p) for p in trainer.optimizers["std"].param_groups[1]["params"]}
    assert id(bn.weight) in free_ids and id(bn.bias) in free_ids
    (gate_group,) = trainer.optimizers["gate"].param_groups
    assert isinstance(trainer.optimizers["gate"], torch.optim.Adam)
    assert gate_group["params"] == [trainer.net.gate.weight] and gate_group["weight_decay"] == 0
    every = [id(p) for o in trainer.optimizers.values() for g in o.param_groups for p in g["params"]]
    assert id(trainer.net.gate.weight) in every and every.count(id(trainer.net.gate.weight)) == 1


def test_weight_decay_groups_by_hand():
    conv, bn, fc = torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Linear(2, 3)
    params = [*conv.parameters(), *bn.parameters(), *fc.parameters()]
    decayed, free = weight_decay_groups(params, 0.1, 1e-4)
    assert [tuple(p.shape) for p in decayed["params"]] == [(2, 1, 3, 3), (3, 2)]
    assert len(free["params"]) == 4  # conv bias, BN weight and bias, fc bias
    (single,) = weight_decay_groups(params, 0.1, 0.0)
    assert single["name"] == "backbone" and len(single["params"]) == 6


def test_adam_keeps_the_gate_in_its_owner_optimizer_as_before(tmp_path):
    trainer = _tiny_trainer(tmp_path, optimizer="adam", lr=1e-3, csg_lr=1e-3, weight_decay=0.0,
                            lr_schedule="multistep")  # fmt: skip
    assert set(trainer.optimizers) == {"std", "csg"}
    names = [g["name"] for g in trainer.optimizers["csg"].param_groups]
    assert names == ["backbone", "gate"]


def test_adamw_decouples_weight_decay(tmp_path):
    trainer = _tiny_trainer(tmp_path, optimizer="adamw", lr=1e-3, csg_lr=1e-3)
    assert isinstance(trainer.optimizers["std"], torch.optim.AdamW)
    assert isinstance(trainer.optimizers["gate"], torch.optim.Adam)


def test_the_gate_moves_only_in_csg_epochs_and_sgd_momentum_is_cycled(tmp_path):
    config = TrainConfig(dataset="digits", model="smallcnn", epochs=3, 
                         warmup=1, out=str(tmp_path / "run"))  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert EpochSchedule(trainer.config).kinds == ["std", "std", "csg"]
    before = trainer.net.gate.weight.detach().clone()
    trainer._prepare(resume=False)
    trainer.train_epoch(0)
    assert torch.equal(trainer.net.gate.weight.detach(), before)
    momentum = trainer.optimizers["std"].param_groups[0]["momentum"]
    expected = trainer.schedule.momentum("std", 0, trainer.schedule.steps_per_epoch - 1)
    assert momentum == pytest.approx(expected) and momentum != pytest.approx(0.9)
    trainer.train_epoch(2)
    assert not torch.equal(trainer.net.gate.weight.detach(), before)


# ------------------------------------------------------------ label smoothing
def test_label_smoothing_zero_is_the_plain_cross_entropy_exactly():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    gate = torch.rand(4, 5)
    plain = F.cross_entropy(logits, labels)
    assert torch.equal(std_objective(logits, labels).total, plain)
    assert torch.equal(std_objective(logits, labels, 0.0).total, plain)
    terms = csg_objective(logits, labels, gate, 0.1, 0.2, 0.0)
    assert torch.equal(terms.ce_csg, plain)
    joint = joint_objective(logits, logits, labels, gate, 0.1, 0.2, 1.0, 0.0)
    assert torch.equal(joint.ce_std, plain) and torch.equal(joint.ce_csg, plain)


def test_label_smoothing_by_hand():
    logits, labels, eps = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]), 0.3
    logp = torch.log_softmax(logits, 1)[0]
    expected = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    assert float(std_objective(logits, labels, eps).total) == pytest.approx(float(expected))


# -------------------------------------------------------------------- schemas
def test_an_old_config_without_schema_resolves_with_its_own_recipe(tmp_path):
    old = json.loads((SCENES_PAIR / "csg" / "config.json").read_text())
    assert "schema" not in old and "optimizer" not in old
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    config = TrainConfig.load(path)
    assert config.schema == 1
    assert (config.optimizer, config.lr_schedule, config.weight_decay) == ("adam", "multistep", 0.0)
    assert (config.label_smoothing, config.lr, config.momentum) == (0.0, 1e-3, 0.9)
    new = TrainConfig(preset="scratch").resolved()
    assert (new.schema, new.optimizer, new.lr_schedule, new.lr) == (2, "sgd", "onecycle", 0.2)
    again = TrainConfig.from_dict(new.to_dict())
    assert again == new  # a schema-2 config.json reads back as itself


def test_a_committed_old_run_loads_and_evaluates_to_its_recorded_accuracy():
    from csg_interp.training.trainer import evaluate_accuracy

    run = load_run(SCENES_PAIR / "csg")
    assert run.config.schema == 1
    assert run.config.optimizer == "adam" and run.config.lr_schedule == "multistep"
    recorded = run.manifest["result"]["test_acc"]
    assert evaluate_accuracy(run.net, run.load_data().test)["acc"] == pytest.approx(recorded)


def test_an_old_schema_run_resumes_with_its_own_recipe_exactly(tmp_path):
    """A run whose config.json predates the schema (no ``schema`` nor recipe keys) resumes with
    Adam and MultiStepLR, and ends exactly where an uninterrupted schema-1 run ends."""
    options = dict(dataset="digits", model="smallcnn", epochs=3, warmup=1, seed=2, schema=1)
    whole = fit(TrainConfig(**options, out=str(tmp_path / "whole")), progress=False)
    assert whole.config.optimizer == "adam"
    part = TrainConfig(**options, out=str(tmp_path / "part")).resolved()
    trainer = Trainer(part, progress=False)
    trainer._prepare(resume=False)
    trainer.history.append(trainer.train_epoch(0))
    trainer.epochs_done = 1
    trainer._save_epoch(improved=True)
    config_path = tmp_path / "part" / "config.json"
    old = json.loads(config_path.read_text())
    for key in ("schema", "optimizer", "momentum", "nesterov", "weight_decay", "lr_schedule",
                "lr_warmup", "label_smoothing"):
        old.pop(key)  # as a config.json written before the recipe options existed
    config_path.write_text(json.dumps(old))
    loaded = TrainConfig.load(config_path)
    assert loaded == part
    resumed = Trainer(loaded, progress=False).fit(resume=True)
    for key, value in whole.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_an_unknown_future_schema_is_refused():
    with pytest.raises(ValueError, match="config schema 9 is not known"):
        TrainConfig(schema=9).resolved()


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(lr_schedule="triangle"), "unknown lr_schedule 'triangle'; use one of multistep"),
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'; use one of adam, adamw, sgd"),
        (dict(lr_warmup=1.5), r"lr_warmup .* \[0, 1\) \(a warm-up no longer than the run\)"),
        (dict(lr_warmup=-0.1), r"lr_warmup"),
        (dict(label_smoothing=-0.1), r"label_smoothing must lie in \[0, 1\)"),
        (dict(weight_decay=-1.0), "weight_decay must be a finite number ≥ 0"),
        (dict(momentum=0.99), "with lr_schedule 'onecycle' the momentum cycles"),
        (dict(momentum=0.0, lr_schedule="cosine"), "nesterov needs a momentum > 0"),
    ],
)
def test_bad_recipe_values_are_one_line_errors_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message) as info:
        TrainConfig(**options).resolved()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--lr-schedule", "triangle"], "--lr-schedule"),
        (["--optimizer", "rmsprop"], "--optimizer"),
    ],
)
def test_cli_rejects_unknown_recipe_names(tmp_path, capsys, argv, flag):
    from csg_interp.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--out", str(tmp_path / "r"), *argv])
    assert info.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_passes_the_recipe_options_through(tmp_path):
    import argparse

    from csg_interp.commands import train as train_command
    from csg_interp.commands.train_options import config_from_args

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--optimizer", "adamw", "--lr-schedule", "cosine",
                              "--lr-warmup", "0.1", "--label-smoothing", "0.1",
                              "--weight-decay", "0.01", "--no-nesterov", "--momentum", "0.8"])  # fmt: skip
    config = config_from_args(args).resolved()
    assert (config.optimizer, config.lr_schedule, config.lr_warmup) == ("adamw", "cosine", 0.1)
    assert (config.label_smoothing, config.weight_decay, config.nesterov, config.momentum) == (
        0.1, 0.01, False, 0.8,
    )  # fmt: skip
    defaults = config_from_args(parser.parse_args(["--out", "x"])).resolved()
    assert defaults == TrainConfig(out="x").resolved()


def test_a_short_cosine_run_resumes_exactly(tmp_path):
    options = dict(dataset="digits", model="smallcnn", epochs=3, warmup=1,
                   lr_schedule="cosine", lr_warmup=0.2, seed=1)  # fmt: skip
    whole = fit(TrainConfig(**options, out=str(tmp_path / "whole")), progress=False)
    part = TrainConfig(**options, out=str(tmp_path / "part"))
    trainer = Trainer(part, progress=False)
    trainer._prepare(resume=False)
    for epoch in range(2):  # stop after two epochs, as a crash would
        trainer.history.append(trainer.train_epoch(epoch))
        trainer.epochs_done = epoch + 1
        trainer._save_epoch(improved=True)
    resumed = Trainer(part, progress=False).fit(resume=True)
    for key, value in whole.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
