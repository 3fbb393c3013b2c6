"""Exact resume after SIGKILL, NaN stops, refused overwrites, failed writes, freezing, joint runs."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from csg_interp.training import (
    CheckpointWriteError,
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    fit,
    load_bundle,
    load_checkpoint,
    load_run,
)
from csg_interp.training import checkpoint as checkpoint_module

# 5 epochs: warm-up 1, then CSG at 1 and 4 (align "end"); 10 steps per epoch at batch 128.
RESUME_OPTIONS = dict(dataset="digits", model="smallcnn", epochs=5, batch_size=128, seed=3, gate_lr=0.05)
TIME_KEYS = {"train_time_s"}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: 1 thread is faster on a busy 2-core machine, and the SIGKILL test's
    subprocess uses 1 thread too (same kernels, same floats)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_bundle(TrainConfig(dataset="digits"))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["epochs_done"] == b["epochs_done"]
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name, opt_a in a["optimizers"].items():
        opt_b = b["optimizers"][name]
        assert opt_a["param_groups"] == opt_b["param_groups"]
        for index, slots in opt_a["state"].items():
            for slot, value in slots.items():
                assert torch.equal(value, opt_b["state"][index][slot]), (name, index, slot)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in rows]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, torch
    torch.set_num_threads(1)
    from csg_interp.training import TrainConfig, Trainer

    class KilledMidEpoch(Trainer):
        steps = 0
        def train_epoch(self, epoch):
            self.steps = 0
            return super().train_epoch(epoch)
        def train_step(self, kind, images, labels):
            parts = super().train_step(kind, images, labels)
            self.steps += 1
            if self.epochs_done == 1 and self.steps == 4:  # inside epoch 1, a CSG epoch
                os.kill(os.getpid(), signal.SIGKILL)
            return parts

    options = {options!r}
    KilledMidEpoch(TrainConfig(**options, out=sys.argv[1]), progress=False).fit()
    """
)


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, digits):
    straight = fit(TrainConfig(**RESUME_OPTIONS, out=str(tmp_path / "straight")), bundle=digits,
                   progress=False)  # fmt: skip
    killed_dir = tmp_path / "killed"
    script = KILL_SCRIPT.format(options=RESUME_OPTIONS)
    result = subprocess.run([sys.executable, "-c", script, str(killed_dir)], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    assert load_checkpoint(killed_dir / "last.pt")["epochs_done"] == 1  # died inside epoch 1
    assert len((killed_dir / "metrics.jsonl").read_text().splitlines()) == 1

    resumed = fit(TrainConfig(**RESUME_OPTIONS, out=str(killed_dir)), bundle=digits, resume=True,
                  progress=False)  # fmt: skip
    assert [row["kind"] for row in resumed.history] == ["std", "csg", "std", "std", "csg"]
    _assert_same_state(load_checkpoint(straight.run_dir / "last.pt"), load_checkpoint(killed_dir / "last.pt"))
    _assert_same_state(load_checkpoint(straight.run_dir / "best.pt"), load_checkpoint(killed_dir / "best.pt"))
    assert len((killed_dir / "metrics.jsonl").read_text().splitlines()) == 5


def test_resuming_a_finished_run_changes_nothing(tmp_path, digits):
    options = dict(RESUME_OPTIONS, epochs=2)
    first = fit(TrainConfig(**options, out=str(tmp_path / "r")), bundle=digits, progress=False)
    before = load_checkpoint(first.run_dir / "last.pt")
    again = fit(TrainConfig(**options, out=str(tmp_path / "r")), bundle=digits, resume=True, progress=False)
    _assert_same_state(before, load_checkpoint(again.run_dir / "last.pt"))


def test_an_existing_run_is_never_overwritten_and_resume_needs_the_same_config(tmp_path, digits):
    options = dict(RESUME_OPTIONS, epochs=2)
    fit(TrainConfig(**options, out=str(tmp_path / "r")), bundle=digits, progress=False)
    with pytest.raises(ValueError, match="already holds a run; pass `resume=True`"):
        fit(TrainConfig(**options, out=str(tmp_path / "r")), bundle=digits, progress=False)
    with pytest.raises(ValueError, match=r"cannot resume .* different configuration \(gate_lr: 0.05 → 0.2"):
        fit(TrainConfig(**dict(options, gate_lr=0.2), out=str(tmp_path / "r")), bundle=digits,
            resume=True, progress=False)  # fmt: skip


class _NaNFromEpochOne(Trainer):
    """Feeds NaN images from epoch 1 on, so the loss itself becomes NaN."""

    def train_step(self, kind, images, labels):
        if self.epochs_done >= 1:
            images = images * float("nan")
        return super().train_step(kind, images, labels)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, digits):
    config = TrainConfig(**dict(RESUME_OPTIONS, epochs=3), out=str(tmp_path / "r"))
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at epoch 1 step 0.*last good checkpoint.*epoch 1"):
        _NaNFromEpochOne(config, bundle=digits, progress=False).fit()
    state = load_checkpoint(tmp_path / "r" / "last.pt")
    assert state["epochs_done"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "diverged"
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    run = load_run(tmp_path / "r")
    assert run.epochs_done == 1


def test_a_failed_checkpoint_write_stops_training_and_keeps_the_previous_last(tmp_path, digits, monkeypatch):
    config = TrainConfig(**dict(RESUME_OPTIONS, epochs=3), out=str(tmp_path / "r"))
    real_save = checkpoint_module.torch.save
    calls = {"n": 0}

    def save_then_fail(obj, stream, *args, **kwargs):
        calls["n"] += 1
        if obj["epochs_done"] == 2:
            stream.write(b"half a file")
            raise OSError(28, "No space left on device")
        return real_save(obj, stream, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", save_then_fail)
    with pytest.raises(CheckpointWriteError, match="No space left on device"):
        fit(config, bundle=digits, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "r" / "last.pt")["epochs_done"] == 1
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


def test_a_missing_or_unknown_data_set_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST not found.*`data_root=DIR`"):
        fit(TrainConfig(dataset="fashion-mnist", data_root=str(tmp_path / "empty"), out=str(tmp_path / "r")))
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        fit(TrainConfig(dataset="imagenet", out=str(tmp_path / "r")))
    with pytest.raises(ValueError, match="config.out is required"):
        fit(TrainConfig(dataset="digits"))


def test_freezing_uses_optimizer_groups_and_never_toggles_requires_grad(tmp_path, digits):
    """Reference-style scopes: STD trains the last 2 stages, CSG the last stage (+ head, gate)."""
    config = TrainConfig(
        dataset="digits", model="smallcnn", epochs=2, batch_size=128, preset="reference",
        warmup=0, period=1, csg_from=0, std_stages=2, csg_stages=1,
        out=str(tmp_path / "r"),
    )  # every epoch is a CSG epoch  # fmt: skip
    trainer = Trainer(config, bundle=digits, progress=False)
    flags = {name: p.requires_grad for name, p in trainer.net.named_parameters()}
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    trainer.fit()
    assert flags == {name: p.requires_grad for name, p in trainer.net.named_parameters()}
    after = trainer.net.state_dict()
    body = "features.body.features."  # SmallCNN stages: 0-3, 4-7, 8-10 (conv, BN, ReLU, pool)
    frozen = [k for k in flags if not flags[k]]
    assert frozen and all(k.startswith(body + "0.") or k.startswith(body + "1.") for k in frozen)
    changed = lambda key: not torch.equal(before[key], after[key])  # noqa: E731
    assert not changed(body + "0.weight")  # stage 1: in no optimiser
    assert not changed(body + "4.weight")  # stage 2: STD-path only, and no STD epoch ran
    assert changed(body + "8.weight") and changed("head.linear.weight") and changed("gate.weight")
    assert changed(body + "1.running_mean")  # BatchNorm of frozen stages still updates (train mode)
    names = {g["name"] for opt in trainer.optimizers.values() for g in opt.param_groups}
    assert names == {"backbone", "gate"}


def test_joint_schedule_trains_both_heads_with_one_optimizer(tmp_path, digits):
    run = fit(TrainConfig(dataset="digits", model="smallcnn", epochs=2, batch_size=128, schedule="joint",
                          gate_lr=0.05, csg_weight=0.5, out=str(tmp_path / "j")),
              bundle=digits, progress=False)  # fmt: skip
    rows = run.history
    assert [r["kind"] for r in rows] == ["joint", "joint"]
    assert rows[-1]["gate_density"] < 1.0
    for row in rows:  # per-batch identity total = ce_std + 0.5·ce_csg + hinge holds for the means
        assert row["loss"] == pytest.approx(row["ce_std"] + 0.5 * row["ce_csg"] + row["hinge"], rel=1e-6)
    assert rows[0]["lr_csg"] is None


def test_same_seed_gives_identical_runs_and_another_seed_does_not(tmp_path, digits):
    options = dict(RESUME_OPTIONS, epochs=2)
    a = fit(TrainConfig(**options, out=str(tmp_path / "a")), bundle=digits, progress=False)
    b = fit(TrainConfig(**options, out=str(tmp_path / "b")), bundle=digits, progress=False)
    c = fit(TrainConfig(**dict(options, seed=4), out=str(tmp_path / "c")), bundle=digits, progress=False)
    sa, sb, sc = (r.net.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["head.linear.weight"], sc["head.linear.weight"])
    assert math.isclose(a.history[-1]["loss"], b.history[-1]["loss"], rel_tol=0, abs_tol=0)
