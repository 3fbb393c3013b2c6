"""Checkpoints: atomic writes, weights_only reads, refused payloads, corrupt and foreign files."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from csg_interp.training import CheckpointError, CheckpointWriteError, load_checkpoint, save_checkpoint
from csg_interp.training import checkpoint as checkpoint_module
from csg_interp.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_state,
    check_plain_state,
    restore_rng_state,
)


def _state(value: float = 1.0) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "epochs_done": 3,
        "model": {"w": torch.full((2, 2), value)},
        "history": [{"epoch": 0, "loss": 0.5, "note": None}],
        "betas": (0.9, 0.999),
    }


class _Payload:
    """Unpickling this object opens (creates) the sentinel file: code execution on load."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def test_round_trip_and_no_temporary_files_left(tmp_path):
    path = save_checkpoint(_state(2.0), tmp_path / "last.pt")
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.full((2, 2), 2.0))
    assert state["history"] == [{"epoch": 0, "loss": 0.5, "note": None}]
    assert state["betas"] == (0.9, 0.999)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_pickled_code_payload_is_refused_and_never_executed(tmp_path):
    # The payload is live: plain pickle would run it and create a file.
    live = tmp_path / "proof-the-payload-runs"
    pickle.loads(pickle.dumps(_Payload(live))).close()
    assert live.exists()

    sentinel = tmp_path / "sentinel"
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": _Payload(sentinel)}, path)
    with pytest.raises(CheckpointError, match="refused.*weights_only=True"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_a_payload_in_the_run_directory_is_refused_by_load_run(tmp_path, tiny_digits_pair):
    import shutil

    from csg_interp.training import load_run

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_digits_pair["csg"], run_dir)
    sentinel = tmp_path / "sentinel"
    torch.save({"format": CHECKPOINT_FORMAT, "model": _Payload(sentinel)}, run_dir / "last.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_run(run_dir)
    assert not sentinel.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_checkpoint_gets_a_clear_error(tmp_path, damage):
    path = save_checkpoint(_state(), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 9,
                      "empty": b""}[damage])  # fmt: skip
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_a_foreign_checkpoint_is_rejected(tmp_path):
    bare = tmp_path / "resnet.pth"
    torch.save(nn.Linear(2, 2).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a csg_interp training checkpoint.*--weights"):
        load_checkpoint(bare)
    other = tmp_path / "list.pt"
    torch.save([1, 2, 3], other)
    with pytest.raises(CheckpointError, match="not a csg_interp training checkpoint"):
        load_checkpoint(other)
    newer = tmp_path / "newer.pt"
    torch.save({**_state(), "version": 99}, newer)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(newer)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(_state(1.0), tmp_path / "last.pt")

    def failing_save(obj, stream, *args, **kwargs):
        stream.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    with pytest.raises(CheckpointWriteError, match="No space left.*previous last.pt.*intact"):
        save_checkpoint(_state(5.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((2, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_only_tensors_and_plain_containers_are_written(tmp_path):
    with pytest.raises(TypeError, match=r"state\['model'\] is a torch.nn.modules.linear.Linear"):
        save_checkpoint({"model": nn.Linear(1, 1)}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match=r"state\['rng'\]\[0\] is a numpy.ndarray"):
        check_plain_state({"rng": [np.zeros(3)]})
    assert not (tmp_path / "x.pt").exists()


def test_rng_states_are_converted_and_restored():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    state = capture_rng_state()
    check_plain_state(state)
    first = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.normal())
    restore_rng_state(state)
    second = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)], np.random.normal())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2] and first[3] == second[3]
