"""The demo's train stage: the pair, the loud digits fallback, reuse of a finished pair."""

from __future__ import annotations

import pytest
import torch

from csg_interp.demo import STAGES, DemoContext, stage_train
from csg_interp.training import load_run


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_is_the_first_demo_stage():
    assert STAGES[0] == ("train", stage_train)


def test_train_stage_falls_back_to_digits_loudly_and_reuses_a_finished_pair(tmp_path, capsys):
    ctx = DemoContext(out=tmp_path / "demo", dataset="auto", data_root=str(tmp_path / "no-fmnist"),
                      device="cpu", seed=0, quick=True)  # fmt: skip
    stage_train(ctx)
    printed = capsys.readouterr().out
    assert "Fashion-MNIST NOT FOUND" in printed and "DIGITS" in printed
    assert ctx.dataset == "digits"
    assert set(ctx.runs) == {"std", "csg"}
    csg, std = load_run(ctx.runs["csg"]), load_run(ctx.runs["std"])
    assert csg.has_gate and not std.has_gate
    assert csg.config.seed == std.config.seed and csg.config.epochs == std.config.epochs
    assert f"CSG: test accuracy {csg.manifest['result']['test_acc']:.4f}" in printed
    assert f"gate L1-density {csg.manifest['result']['gate_density']:.3f}" in printed
    assert str(ctx.runs["csg"]) in printed

    stamp = (ctx.runs["csg"] / "last.pt").stat().st_mtime_ns
    stage_train(ctx)  # a finished pair in the same folder is reused, not retrained
    assert (ctx.runs["csg"] / "last.pt").stat().st_mtime_ns == stamp
