"""ImageFolder loader on a tree of real photographs (scikit-image, scikit-learn) in mixed sizes
and modes, with a corrupt file and stray non-image files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from csg_interp.data import MissingDatasetError, load_dataset
from csg_interp.data.folder import IMAGENET_MEAN, load_image_folder, read_image

skimage_data = pytest.importorskip("skimage.data")


def _photos() -> dict[str, list[Image.Image]]:
    """Three classes of real photographs, each in several sizes and modes."""
    from sklearn.datasets import load_sample_images

    china, flower = (Image.fromarray(a) for a in load_sample_images().images)
    cat = Image.fromarray(skimage_data.chelsea())
    coffee = Image.fromarray(skimage_data.coffee())
    rocket = Image.fromarray(skimage_data.rocket())
    camera = Image.fromarray(skimage_data.camera())  # grey
    return {
        "cat": [cat.resize((90, 60)), cat.convert("L").resize((50, 70)),
                cat.convert("RGBA").resize((64, 64)), cat.resize((40, 30)).quantize(16)],
        "flower": [flower.resize((80, 56)), flower.convert("L").resize((45, 45)),
                   flower.convert("RGBA").resize((60, 90)), flower.resize((33, 40))],
        "scene": [china.resize((96, 64)), coffee.resize((70, 50)), rocket.resize((48, 80)),
                  camera.resize((40, 40))],
    }  # fmt: skip


_FORMATS = [".png", ".jpg", ".png", ".bmp"]


def _write_tree(class_root: Path, with_strays: bool = True) -> None:
    for name, images in _photos().items():
        folder = class_root / name
        folder.mkdir(parents=True)
        for index, (image, ext) in enumerate(zip(images, _FORMATS)):
            if ext == ".jpg" and image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            image.save(folder / f"{name}_{index}{ext}")
    if with_strays:
        (class_root / "README.txt").write_text("photos for the test")
        (class_root / "cat" / "labels.csv").write_text("file,label\n")
        (class_root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")


@pytest.fixture(scope="module")
def flat_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flat")
    _write_tree(root)
    return root


@pytest.fixture()
def corrupt_tree(tmp_path: Path, flat_tree: Path) -> Path:
    root = tmp_path / "corrupt"
    shutil.copytree(flat_tree, root)
    good = (root / "flower" / "flower_1.jpg").read_bytes()
    (root / "flower" / "broken.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG
    (root / "scene" / "not_really.png").write_text("this is text, not a PNG")
    return root


def test_flat_tree_loads_every_photo_once(flat_tree: Path) -> None:
    bundle = load_image_folder(flat_tree, image_size=32, val_fraction=0.25, test_fraction=0.25)
    assert bundle.classes == ["cat", "flower", "scene"] and bundle.name == "folder"
    # Per class: 4 photos -> 2 train, 1 val, 1 test (stratified).
    for split, expected in (("train", [2, 2, 2]), ("val", [1, 1, 1]), ("test", [1, 1, 1])):
        dataset = getattr(bundle, split)
        assert torch.bincount(dataset.labels, minlength=3).tolist() == expected
        assert dataset.images.dtype == torch.uint8 and dataset.image_shape == (3, 32, 32)
    skipped = {Path(p).name for p in bundle.info["skipped_files"]}
    assert skipped == {"README.txt", "labels.csv", ".DS_Store"}
    assert bundle.info["corrupt_files"] == [] and bundle.info["layout"] == "flat"
    # The union of the splits is the set of photos, no duplicates.
    rows = torch.cat([bundle.train.images, bundle.val.images, bundle.test.images]).flatten(1)
    assert len({bytes(r.numpy()) for r in rows}) == 12


def test_decoded_photo_equals_torchvision_standard_eval_transform(flat_tree: Path) -> None:
    path = flat_tree / "cat" / "cat_0.png"  # RGB 90×60
    expected = transforms.Compose(
        [transforms.Resize(27), transforms.CenterCrop(24), transforms.PILToTensor()]
    )(Image.open(path).convert("RGB"))
    assert torch.equal(read_image(path, image_size=24), expected)  # resize = round(24·256/224)


def test_modes_grey_alpha_palette_and_16_bit(tmp_path: Path) -> None:
    grey = Image.new("L", (10, 10), 77)
    grey.save(tmp_path / "grey.png")
    out = read_image(tmp_path / "grey.png", image_size=8)
    assert out.shape == (3, 8, 8) and (out == 77).all()
    # Fully transparent pixels are composited onto white, opaque ones keep their colour.
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = (200, 10, 10, 255)
    rgba[:, 10:] = (0, 0, 0, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    out = read_image(tmp_path / "alpha.png", image_size=10, resize=10)  # no resampling, crop 10×10
    assert out[:, :, :2].tolist() == torch.tensor([200, 10, 10]).view(3, 1, 1).expand(3, 10, 2).tolist()
    assert (out[:, :, -2:] == 255).all()
    # 16-bit grey is scaled to 8 bits.
    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert (read_image(tmp_path / "deep.png", image_size=4, resize=6) == 128).all()
    # Palette image with transparency.
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    assert (read_image(tmp_path / "palette.png", 8, 8) == torch.tensor([10, 20, 30]).view(3, 1, 1)).all()
    # Grey output on request.
    assert read_image(tmp_path / "alpha.png", image_size=10, channels=1).shape == (1, 10, 10)


def test_corrupt_files_are_an_error_naming_them(corrupt_tree: Path) -> None:
    with pytest.raises(ValueError, match=r"2 image file\(s\) cannot be decoded: .*(broken|not_really)"):
        load_image_folder(corrupt_tree, image_size=16)
    with pytest.raises(ValueError, match="`skip_corrupt=True`"):
        load_image_folder(corrupt_tree, image_size=16)


def test_corrupt_files_can_be_skipped_and_are_listed(corrupt_tree: Path) -> None:
    bundle = load_image_folder(corrupt_tree, image_size=16, skip_corrupt=True)
    assert sorted(Path(p).name for p in bundle.info["corrupt_files"]) == ["broken.jpg", "not_really.png"]
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 12


def test_split_layout_uses_given_test_and_carves_val(tmp_path: Path) -> None:
    _write_tree(tmp_path / "train", with_strays=False)
    (tmp_path / "test" / "cat").mkdir(parents=True)
    Image.fromarray(skimage_data.chelsea()).resize((20, 20)).save(tmp_path / "test" / "cat" / "c.png")
    bundle = load_dataset("folder", data_root=tmp_path, image_size=16, val_fraction=0.25, seed=1)
    assert bundle.info["layout"] == "split"
    assert bundle.test.labels.tolist() == [0]  # 'cat' is class 0 of train's classes
    assert (len(bundle.train), len(bundle.val)) == (9, 3)
    (tmp_path / "test" / "dog").mkdir()
    shutil.copy(tmp_path / "test" / "cat" / "c.png", tmp_path / "test" / "dog" / "d.png")
    with pytest.raises(ValueError, match="class folder\\(s\\) that .* lacks: dog"):
        load_dataset("folder", data_root=tmp_path, image_size=16)


def test_options_grey_subset_and_imagenet_stats(flat_tree: Path) -> None:
    bundle = load_image_folder(flat_tree, image_size=16, channels=1, train_subset=3)
    assert bundle.train.image_shape == (1, 16, 16) and len(bundle.train) == 3
    imagenet = load_image_folder(flat_tree, image_size=16, stats="imagenet")
    assert imagenet.mean == IMAGENET_MEAN


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"channels": 2}, ValueError, "channels must be 1"),
        ({"stats": "cifar"}, ValueError, "stats must be"),
        ({"channels": 1, "stats": "imagenet"}, ValueError, "needs channels=3"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction must lie"),
        ({"train_subset": 0}, ValueError, "train_subset must be"),
    ],
)
def test_bad_options(flat_tree: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_image_folder(flat_tree, image_size=8, **kwargs)


def test_bad_trees(tmp_path: Path) -> None:
    with pytest.raises(MissingDatasetError, match="`data_root=DIR`"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="has no class folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="without any image .* cat"):
        load_image_folder(tmp_path)


def test_train_cli_on_an_image_folder_with_loader_options(flat_tree: Path, tmp_path: Path) -> None:
    from csg_interp.cli import main
    from csg_interp.training import load_run

    out = tmp_path / "run"
    code = main([
        "train", "--dataset", "folder", "--data-root", str(flat_tree), "--model", "smallcnn",
        "--widths", "4", "4", "8", "--epochs", "2", "--batch-size", "4", "--device", "cpu",
        "--data-option", "image_size=24", "--data-option", "val_fraction=0.25",
        "--data-option", "test_fraction=0.25", "--out", str(out), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    run = load_run(out)
    assert run.config.data_options == {"image_size": 24, "val_fraction": 0.25, "test_fraction": 0.25}
    assert run.classes == ["cat", "flower", "scene"]
    assert run.load_data().train.image_shape == (3, 24, 24)  # the run reloads its own data
    assert run.net(torch.rand(2, 3, 24, 24)).shape == (2, 3)
