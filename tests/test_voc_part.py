"""VOC Part loader on a generated fixture in the reference's on-disk layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csg_interp.data import MissingDatasetError, load_dataset

# (class, instance, image id, split file, mask box x1, y1, x2, y2 in a 32×32 crop)
INSTANCES = [
    ("bird", 0, "2008_000001", "train", (2, 3, 10, 12)),
    ("cat", 1, "2008_000002", "train", (0, 0, 32, 32)),
    ("cat", 2, "2008_000002", "train", (5, 5, 6, 6)),  # second instance of the same image
    ("dog", 3, "2008_000003", "train", (4, 8, 20, 30)),
    ("horse", 4, "2008_000004", "train", (1, 1, 31, 16)),
    ("sheep", 5, "2009_000005", "val", (10, 2, 22, 30)),
    ("cow", 6, "2009_000006", "val", (0, 16, 16, 32)),
]


def write_fixture(root: Path, size: int = 32) -> Path:
    processed = root / "processed"
    folder = processed / f"{size}x{size}"
    for sub in ("obj_img", "obj_mask", "part_mask"):
        (folder / sub).mkdir(parents=True)
    (processed / "metadata").mkdir()
    for split in ("train", "val"):
        ids = sorted({i[2] for i in INSTANCES if i[3] == split})
        (processed / "metadata" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    for cls, instance, image_id, _, (x1, y1, x2, y2) in INSTANCES:
        stem = f"{cls}-{instance}-{image_id}"
        image = np.full((size, size, 3), 40 * instance, dtype=np.uint8)
        Image.fromarray(image).save(folder / "obj_img" / f"{stem}.jpg", quality=95)
        mask = np.zeros((size, size), dtype=np.uint8)
        mask[y1:y2, x1:x2] = 255
        Image.fromarray(mask).convert("1").save(folder / "obj_mask" / f"{stem}.mask.bmp")
        (folder / "part_mask" / stem).mkdir()
    return processed


def test_fixture_loads_with_masks_boxes_and_image_level_splits(tmp_path):
    write_fixture(tmp_path)
    bundle = load_dataset("voc-part", data_root=tmp_path, size=32, val_fraction=0.25, seed=0)
    assert bundle.name == "voc-part" and bundle.classes == ["bird", "cat", "dog", "cow", "horse", "sheep"]
    assert len(bundle.train) + len(bundle.val) == 5 and len(bundle.test) == 2
    assert sorted(bundle.test.labels.tolist()) == [3, 5]  # cow, sheep come from val.txt
    assert bundle.test.images.shape == (2, 3, 32, 32) and bundle.test.images.dtype == torch.uint8
    # the two cat instances of image 2008_000002 stay together
    assert sorted(int((s.labels == 1).sum()) for s in (bundle.train, bundle.val)) == [0, 2]
    expected = {cls: box for cls, _, _, _, box in INSTANCES}
    for split in (bundle.train, bundle.val, bundle.test):
        for label, box, mask, image in zip(
            split.labels, split.extras["boxes"], split.extras["masks"], split.images
        ):
            cls = bundle.classes[int(label)]
            if cls != "cat":
                assert box.tolist() == list(map(float, expected[cls]))
                x1, y1, x2, y2 = expected[cls]
                assert int(mask.sum()) == (x2 - x1) * (y2 - y1)
            assert mask.dtype == torch.bool
            # JPEG is lossy, but a flat image stays within a few levels
            assert abs(int(image.float().mean()) - int(image[0, 0, 0])) <= 2


def test_processed_folder_itself_is_accepted(tmp_path):
    processed = write_fixture(tmp_path)
    bundle = load_dataset("voc-part", data_root=processed, size=32)
    assert len(bundle.test) == 2


def test_missing_folder_says_where_to_get_it(tmp_path):
    with pytest.raises(MissingDatasetError, match="hyliang96/CSGCNN"):
        load_dataset("voc-part", data_root=tmp_path)


def test_bad_files_raise(tmp_path):
    processed = write_fixture(tmp_path)
    folder = processed / "32x32" / "obj_img"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "zebra-9-2008_000001.jpg")
    with pytest.raises(ValueError, match="unknown class 'zebra'"):
        load_dataset("voc-part", data_root=tmp_path, size=32)
    (folder / "zebra-9-2008_000001.jpg").rename(folder / "not_a_voc_name.jpg")
    with pytest.raises(ValueError, match="expected <class>-<instance>-<image id>.jpg"):
        load_dataset("voc-part", data_root=tmp_path, size=32)
    (folder / "not_a_voc_name.jpg").unlink()
    (processed / "32x32" / "obj_mask" / "cow-6-2009_000006.mask.bmp").unlink()
    with pytest.raises(MissingDatasetError, match="object mask"):
        load_dataset("voc-part", data_root=tmp_path, size=32)


def test_bad_options_raise(tmp_path):
    write_fixture(tmp_path)
    with pytest.raises(ValueError, match="size must be one of"):
        load_dataset("voc-part", data_root=tmp_path, size=100)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("voc-part", data_root=tmp_path, size=32, val_fraction=1.5)
