"""CIFAR-10 python-batch loader on a generated fixture in the real format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from csg_interp.data import MissingDatasetError, load_dataset
from csg_interp.data.cifar10 import (
    CIFAR10_CLASSES,
    load_cifar10,
    read_cifar_batch,
    write_cifar10_fixture,
    write_cifar_batch,
)


@pytest.fixture()
def cifar_root(tmp_path: Path) -> Path:
    write_cifar10_fixture(tmp_path, per_batch=12, test_size=10, seed=3)
    return tmp_path


def test_pixel_layout_is_red_green_blue_planes_row_major(tmp_path: Path) -> None:
    # One hand-made image: value = plane * 64 + (row + col) % 64, so every pixel is identifiable.
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    image = np.stack([plane * 64 + (rows + 2 * cols) % 64 for plane in range(3)]).astype(np.uint8)
    write_cifar10_fixture(tmp_path, per_batch=2, test_size=2)
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batch(folder / "test_batch", np.stack([image, 255 - image]), np.array([7, 2]))
    # The file holds the planes as one (N, 3072) row: red 1024 bytes, then green, then blue.
    raw = read_cifar_batch(folder / "test_batch")["data"]
    assert raw.shape == (2, 3072)
    assert raw[0, 1024 + 32 * 5 + 9] == 64 + (5 + 18) % 64  # green plane, row 5, column 9
    bundle = load_cifar10(tmp_path, val_size=2)
    assert torch.equal(bundle.test.images[0], torch.from_numpy(image))
    assert torch.equal(bundle.test.images[1], torch.from_numpy(255 - image))
    assert bundle.test.labels.tolist() == [7, 2]
    assert bundle.test.images.dtype == torch.uint8


def test_splits_cover_the_training_batches_exactly_once(cifar_root: Path) -> None:
    bundle = load_cifar10(cifar_root, val_size=10, seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 10, 10)
    assert bundle.classes == CIFAR10_CLASSES
    assert bundle.train.image_shape == (3, 32, 32) and bundle.augment == "flip_shift"
    everything = torch.cat([bundle.train.images, bundle.val.images]).flatten(1)
    expected = []
    for i in range(1, 6):
        expected.append(read_cifar_batch(cifar_root / "cifar-10-batches-py" / f"data_batch_{i}")["data"])
    expected = torch.from_numpy(np.concatenate(expected))
    # Same multiset of rows: sort both by their bytes.
    key = lambda t: sorted(map(bytes, t.numpy()))  # noqa: E731
    assert key(everything) == key(expected)
    # Deterministic per seed, different across seeds.
    again = load_cifar10(cifar_root, val_size=10, seed=0)
    other = load_cifar10(cifar_root, val_size=10, seed=1)
    assert torch.equal(again.val.images, bundle.val.images)
    assert not torch.equal(other.val.images, bundle.val.images)
    # Statistics come from the training split only.
    x = bundle.train.images.float() / 255
    assert bundle.mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-4)


def test_load_dataset_finds_the_nested_folder_and_subsets(cifar_root: Path) -> None:
    bundle = load_dataset("cifar10", data_root=cifar_root, val_size=10, train_subset=7)
    assert len(bundle.train) == 7 and bundle.name == "cifar10"
    direct = load_dataset("cifar10", data_root=cifar_root / "cifar-10-batches-py", val_size=10)
    assert len(direct.train) == 50


def test_class_names_default_when_meta_is_missing(cifar_root: Path) -> None:
    (cifar_root / "cifar-10-batches-py" / "batches.meta").unlink()
    assert load_cifar10(cifar_root, val_size=5).classes == CIFAR10_CLASSES


def test_missing_data_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(MissingDatasetError, match="cifar-10-python.tar.gz"):
        load_cifar10(tmp_path / "nowhere")


class _Payload:
    """Unpickling this would create a file: the loader must refuse it and run nothing."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def test_a_batch_that_carries_code_is_refused_and_not_executed(cifar_root: Path) -> None:
    sentinel = cifar_root / "pwned"
    batch = cifar_root / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as handle:
        pickle.dump({b"data": _Payload(sentinel), b"labels": []}, handle, protocol=2)
    with pytest.raises(ValueError, match=r"not a CIFAR python batch \(refused to load"):
        load_cifar10(cifar_root)
    assert not sentinel.exists()


def test_truncated_batch_is_a_clear_error(cifar_root: Path) -> None:
    batch = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(ValueError, match="data_batch_2: truncated or corrupt"):
        load_cifar10(cifar_root)


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "must be uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels must lie in 0..9"),
        ({b"labels": [0]}, "needs 'data' and 'labels'"),
        ([1, 2, 3], "a CIFAR batch is a dict"),
    ],
)
def test_malformed_batches_are_named(cifar_root: Path, batch, message: str) -> None:
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    with pytest.raises(ValueError, match=message):
        load_cifar10(cifar_root)


def test_bad_train_subset(cifar_root: Path) -> None:
    with pytest.raises(ValueError, match="train_subset must be a positive"):
        load_cifar10(cifar_root, train_subset=0)


@pytest.mark.slow
def test_reproduce_recipe_smoke_on_the_fixture(tmp_path: Path) -> None:
    """`make reproduce-cifar10` end to end on the fixture (1 epoch each, serial MI)."""
    import importlib.util
    import json
    import subprocess

    root = Path(__file__).resolve().parents[1]
    dry = subprocess.run(["make", "-n", "reproduce-cifar10", f"DATA={tmp_path}", "RECIPE=smoke"],
                         cwd=root, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert f'reproduce_cifar10.py --data-root "{tmp_path}" --recipe smoke' in dry.stdout

    spec = importlib.util.spec_from_file_location("reproduce_cifar10", root / "experiments" / "reproduce_cifar10.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    write_cifar10_fixture(tmp_path / "data", per_batch=10, test_size=20)
    out = tmp_path / "runs"
    args = ["--data-root", str(tmp_path / "data"), "--recipe", "smoke", "--epochs", "1",
            "--mi-jobs", "1", "--out", str(out), "--no-progress"]
    assert script.main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["csg"]["test_images"] == 20 and results["std"]["l1_density"] is None
    assert 0.0 <= results["csg"]["accuracy"] <= 1.0 and 0.1 <= results["csg"]["l1_density"] <= 1.0
    assert results["csg"]["mis"] >= 0.0 and results["std"]["mis"] >= 0.0
    table = (out / "table.md").read_text()
    assert "| CSG (paper) | 0.9192 | 0.1603 | 0.0788 |" in table and "| STD (ours, smoke) |" in table
    # A finished run is skipped when the reproduction is started again: nothing is rewritten.
    import argparse

    stamp = (out / "csg" / "last.pt").stat().st_mtime_ns
    options = argparse.Namespace(data_root=str(tmp_path / "data"), out=str(out), seed=0, epochs=1,
                                 val_size=5000, projection="max")
    run = script._train(script._config("csg", options, script.RECIPES["smoke"]), progress=False)
    assert run.epochs_done == 1 and (out / "csg" / "last.pt").stat().st_mtime_ns == stamp
    with pytest.raises(MissingDatasetError):
        script.main(["--data-root", str(tmp_path / "nothing"), "--recipe", "smoke"])
