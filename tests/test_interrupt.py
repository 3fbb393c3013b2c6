"""Ctrl-C during `csg-interp train`: the last completed epoch is kept, the manifest says so, the
one-line hint is the exact resume command, and resuming with --resume alone gives the run an
uninterrupted training gives (weights and per-epoch metrics)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from csg_interp.errors import TrainingInterrupted
from csg_interp.training.interrupt import InterruptGuard

TRAIN = ["--dataset", "digits", "--model", "smallcnn", "--epochs", "6", "--batch-size", "16",
         "--lam", "0.001", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "csg_interp", *args]


def _rows(path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _without_times(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.endswith("_time_s")} for row in rows]


def test_guard_defers_a_signal_inside_a_deferred_block_and_raises_outside():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run as a background job
    guard = InterruptGuard()
    done = []
    with pytest.raises(TrainingInterrupted) as stop:
        with guard:
            with guard.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("saved")  # still runs: the block is shielded
            done.append("never")
    assert done == ["saved"]
    assert stop.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before  # restored, whatever it was


def test_sigint_mid_epoch_keeps_the_last_epoch_and_resume_alone_matches(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        _cli("train", *TRAIN, "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not _rows(out / "metrics.jsonl") and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)  # in epoch 2 (or its bookkeeping)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    manifest = json.loads((out / "manifest.json").read_text())
    done = manifest["epochs_done"]
    assert manifest["status"] == "interrupted"
    assert 1 <= done < 6
    assert len(_rows(out / "metrics.jsonl")) == done
    assert torch.load(out / "last.pt", weights_only=True)["epochs_done"] == done
    assert last_line == (
        f"csg-interp train: interrupted by SIGINT; {done} completed epoch(s) kept in {out}; "
        f"resume with: csg-interp train --out {out} --resume"
    )
    resumed = subprocess.run(_cli("train", "--out", str(out), "--resume", "--no-progress"),
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"

    reference = tmp_path / "reference"
    straight = subprocess.run(_cli("train", *TRAIN, "--out", str(reference)),
                              capture_output=True, text=True, env=env)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    assert _without_times(_rows(out / "metrics.jsonl")) == _without_times(
        _rows(reference / "metrics.jsonl")
    )
    a = torch.load(out / "last.pt", weights_only=True)["model"]
    b = torch.load(reference / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
