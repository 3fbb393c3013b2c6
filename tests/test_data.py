"""Data sets: digits, Fashion-MNIST in both on-disk layouts (idx fixtures), bad input."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from csg_interp.data import (
    ArrayDataset,
    MissingDatasetError,
    available_datasets,
    load_dataset,
    read_idx,
    split_indices,
    write_idx,
)


def _write_fashion_fixture(folder, n_train=60, n_test=20, gz=True):
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name + suffix), array)
    return arrays


def test_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)
    # The magic number by hand: 0x00000803 then the three sizes.
    raw = (tmp_path / "a-idx3-ubyte").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and int.from_bytes(raw[4:8], "big") == 2


def test_idx_corrupt_files(tmp_path):
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    write_idx(tmp_path / "t-idx1-ubyte", np.zeros(10, np.uint8))
    (tmp_path / "t-idx1-ubyte").write_bytes((tmp_path / "t-idx1-ubyte").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "t-idx1-ubyte")
    (tmp_path / "z-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01")[:-4])
    with pytest.raises(ValueError, match="corrupt"):
        read_idx(tmp_path / "z-idx1-ubyte.gz")


@pytest.mark.parametrize("layout", ["debian-flat-gz", "torchvision-raw", "torchvision-raw-gz"])
def test_fashion_mnist_layouts(tmp_path, layout):
    folder = tmp_path if layout == "debian-flat-gz" else tmp_path / "FashionMNIST" / "raw"
    arrays = _write_fashion_fixture(folder, gz=layout.endswith("gz"))
    bundle = load_dataset("fashion-mnist", data_root=tmp_path, val_size=10)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 10, 20)
    assert bundle.classes[0] == "T-shirt/top" and bundle.num_classes == 10
    assert bundle.in_channels == 1 and bundle.image_size == (28, 28)
    # Test split = the t10k files, in order, scaled to [0, 1].
    image, label = bundle.test[3]
    torch.testing.assert_close(image[0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"][3]) / 255.0)
    assert label.item() == 3
    # Train and val partition the 60 training images.
    all_train = torch.cat([bundle.train.images, bundle.val.images]).view(60, -1)
    assert len({tuple(row.tolist()) for row in all_train}) == 60
    assert bundle.augment == "flip_shift"


def test_fashion_mnist_split_is_deterministic(tmp_path):
    _write_fashion_fixture(tmp_path)
    a = load_dataset("fashion-mnist", data_root=tmp_path, val_size=10, seed=3)
    b = load_dataset("fashion-mnist", data_root=tmp_path, val_size=10, seed=3)
    c = load_dataset("fashion-mnist", data_root=tmp_path, val_size=10, seed=4)
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    sub = load_dataset("fashion-mnist", data_root=tmp_path, val_size=10, train_subset=20)
    assert len(sub.train) == 20


def test_missing_fashion_mnist_names_the_fix(tmp_path):
    with pytest.raises(MissingDatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_root=tmp_path / "nowhere")


def test_mismatched_fashion_files(tmp_path):
    _write_fashion_fixture(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(ValueError, match="test files disagree"):
        load_dataset("fashion-mnist", data_root=tmp_path, val_size=10)


def test_digits():
    bundle = load_dataset("digits")
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (1237, 200, 360)
    assert bundle.image_size == (8, 8) and bundle.num_classes == 10
    x, y = bundle.train.tensors()
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert bundle.mean[0] == pytest.approx(float(x.mean()), abs=1e-3)


def test_registry_and_unknown_name():
    assert {"digits", "fashion-mnist"} <= set(available_datasets())
    with pytest.raises(ValueError, match="unknown dataset 'mnist-x'; available: .*digits"):
        load_dataset("mnist-x")


def test_array_dataset_validation_and_subset():
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="one label per image"):
        ArrayDataset(images, torch.zeros(3, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ArrayDataset(images, torch.tensor([0, 1, 2, 0]), ["a", "b"])
    with pytest.raises(ValueError, match="extra 'boxes' has 2 rows"):
        ArrayDataset(images, torch.zeros(4, dtype=torch.long), ["a"], {"boxes": torch.zeros(2, 4)})
    data = ArrayDataset(images, torch.tensor([0, 1, 1, 0]), ["a", "b"], {"boxes": torch.arange(4)})
    assert data.subset([3, 1]).extras["boxes"].tolist() == [3, 1]


def test_split_indices():
    keep, hold = split_indices(10, 3, seed=0)
    assert len(keep) == 7 and len(hold) == 3 and not set(keep) & set(hold)
    with pytest.raises(ValueError, match="holdout size"):
        split_indices(10, 10, seed=0)
