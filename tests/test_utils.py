"""The private helpers every layer shares: device resolution, eval mode, atomic writes, min-max."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from csg_interp._utils import (
    atomic_writer,
    eval_mode,
    min_max,
    resolve_device,
    write_json_atomic,
    write_text_atomic,
)


def test_resolve_device_names_none_and_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(None, nn.Linear(1, 1)) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_resolve_device_without_cuda_says_what_to_use():
    with pytest.raises(ValueError, match="CUDA is not available; use --device cpu or auto"):
        resolve_device("cuda")


def test_the_old_import_paths_are_the_same_function():
    from csg_interp.metrics import resolve_device as from_metrics
    from csg_interp.training.trainer import resolve_device as from_trainer

    assert from_metrics is resolve_device and from_trainer is resolve_device


def test_eval_mode_restores_the_training_flag_even_after_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with eval_mode(net) as device:
        assert not net.training and not net[1].training
        assert device == torch.device("cpu")
    assert net.training and net[1].training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training
    net.eval()
    with eval_mode(net, "cpu"):
        pass
    assert not net.training


def test_atomic_writes_replace_the_file_and_leave_nothing_on_failure(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "a.json", {"b": [1, 2]}, indent=1)
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert path.read_text() == '{\n "b": [\n  1,\n  2\n ]\n}\n'
    with pytest.raises(OSError, match="disk full"), atomic_writer(path, "w") as stream:
        stream.write("partial")
        raise OSError("disk full")
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]
    assert write_text_atomic(path, "new").read_text() == "new"


def test_min_max_numpy_global_and_per_slice():
    np.testing.assert_allclose(min_max(np.array([[1.0, 3.0], [2.0, 5.0]])), [[0, 0.5], [0.25, 1]])
    np.testing.assert_array_equal(min_max(np.full((2, 2), 7.0)), np.zeros((2, 2)))
    np.testing.assert_allclose(
        min_max(np.array([[1.0, 3.0], [4.0, 4.0]]), start_dim=1), [[0, 1], [0, 0]]
    )


def test_min_max_torch_matches_the_per_map_formula():
    maps = torch.rand(5, 4, 3)
    maps[2] = 0.25  # a constant map becomes zeros
    flat = maps.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    expected = (maps - low[:, None, None]) / span[:, None, None]
    scaled = min_max(maps, start_dim=1)
    assert torch.equal(scaled, expected)
    assert torch.equal(scaled[2], torch.zeros(4, 3))
    assert float(scaled[0].min()) == 0.0 and float(scaled[0].max()) == 1.0
    assert torch.equal(min_max(torch.tensor([2.0, 4.0, 3.0])), torch.tensor([0.0, 1.0, 0.5]))


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = write_text_atomic(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640
