"""The scenes data set: deterministic, boxes tight around masks, clutter outside the boxes."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import masks_to_boxes

from csg_interp.data import ArrayDataset, MissingDatasetError, find_fashion_mnist, load_dataset
from csg_interp.data.scenes import compose_scenes, make_scene_dataset, synthetic_clutter


def square_objects(count: int = 6, side: int = 6) -> torch.Tensor:
    objects = torch.zeros(count, 1, side, side, dtype=torch.uint8)
    objects[:, :, 1:-1, 1:-1] = 200
    return objects


def test_compose_is_deterministic_by_seed():
    objects, clutter = square_objects(), synthetic_clutter(8, 8, seed=1)
    first = compose_scenes(objects, clutter, canvas=32, clutter_size=(6, 8), seed=3)
    second = compose_scenes(objects, clutter, canvas=32, clutter_size=(6, 8), seed=3)
    other = compose_scenes(objects, clutter, canvas=32, clutter_size=(6, 8), seed=4)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_boxes_are_tight_around_masks_and_clutter_stays_outside():
    objects, clutter = square_objects(20), synthetic_clutter(16, 8, seed=0)
    images, boxes, masks = compose_scenes(
        objects, clutter, canvas=32, scale=(1.0, 2.0), clutter_count=(2, 4), clutter_size=(6, 8),
        seed=0,
    )  # fmt: skip
    assert images.shape == (20, 1, 32, 32) and images.dtype == torch.uint8
    assert masks.shape == (20, 32, 32) and masks.dtype == torch.bool
    tight = masks_to_boxes(masks).float()
    tight[:, 2:] += 1  # last pixel index -> pixel edge
    assert torch.equal(boxes, tight)
    level = int(0.05 * 255) + 1
    for index in range(20):
        x1, y1, x2, y2 = boxes[index].long().tolist()
        inside = images[index, 0, y1:y2, x1:x2]
        # inside the box: the object (>= level exactly on its mask) and nothing else
        assert torch.equal(inside >= level, masks[index, y1:y2, x1:x2])
    assert (images[:, 0] * ~masks).sum() > 0  # clutter was drawn somewhere


def test_object_mask_is_the_pasted_item():
    objects = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    objects[0, 0, 1:3, 1:3] = 255
    images, boxes, masks = compose_scenes(
        objects, objects, canvas=10, scale=(1.0, 1.0), clutter_count=(0, 0), seed=0
    )
    assert int(masks.sum()) == 4
    assert boxes[0, 2] - boxes[0, 0] == 2 and boxes[0, 3] - boxes[0, 1] == 2
    assert torch.equal(images[0, 0] == 255, masks[0])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"canvas": 8, "scale": (2.0, 2.0)}, "do not fit"),
        ({"scale": (2.0, 1.0)}, "scale must be a"),
        ({"clutter_count": (3, 1)}, "clutter_count must be a"),
        ({"mask_threshold": 0.0}, "mask_threshold"),
    ],
)
def test_bad_settings_raise(options, match):
    with pytest.raises(ValueError, match=match):
        compose_scenes(square_objects(2), square_objects(2), **{"clutter_size": (4, 6), **options})


def test_blank_object_and_bad_shapes_raise():
    with pytest.raises(ValueError, match="blank"):
        compose_scenes(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), square_objects(1), canvas=16,
                       clutter_size=(4, 4))  # fmt: skip
    with pytest.raises(ValueError, match="grey images"):
        compose_scenes(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), square_objects(1), canvas=16)


def test_make_scene_dataset_keeps_labels_and_adds_extras():
    objects = ArrayDataset(square_objects(4), torch.tensor([0, 1, 1, 0]), ["a", "b"])
    scenes = make_scene_dataset(objects, square_objects(3), canvas=24, clutter_size=(4, 6), seed=0)
    assert scenes.labels.tolist() == [0, 1, 1, 0] and scenes.classes == ["a", "b"]
    assert scenes.extras["boxes"].shape == (4, 4) and scenes.extras["masks"].shape == (4, 24, 24)
    sub = scenes.subset([2, 0])
    assert torch.equal(sub.extras["boxes"], scenes.extras["boxes"][[2, 0]])


def test_load_scenes_from_digits_needs_no_files():
    bundle = load_dataset("scenes", source="digits", train_size=30, val_size=10, test_size=12)
    again = load_dataset("scenes", source="digits", train_size=30, val_size=10, test_size=12)
    assert bundle.name == "scenes" and bundle.num_classes == 10
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [30, 10, 12]
    assert bundle.image_size == (64, 64) and bundle.info["box_format"] == "xyxy pixel-edge"
    assert torch.equal(bundle.test.images, again.test.images)
    for split in (bundle.train, bundle.val, bundle.test):
        boxes = split.extras["boxes"]
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 10).all()  # 20-36 px digits leave >= 10 px boxes


def test_load_scenes_test_split_does_not_depend_on_the_training_size():
    """Each split has its own generation seed (the committed-model test builds 64 training
    scenes instead of 50 000 and relies on this)."""
    small = load_dataset("scenes", source="digits", train_subset=8, val_size=10, test_size=12)
    large = load_dataset("scenes", source="digits", train_subset=40, val_size=10, test_size=12)
    assert len(small.train) == 8 and len(large.train) == 40
    for split in ("val", "test"):
        a, b = getattr(small, split), getattr(large, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        assert torch.equal(a.extras["boxes"], b.extras["boxes"])


def test_load_scenes_rejects_unknown_source():
    with pytest.raises(ValueError, match="unknown scenes source"):
        load_dataset("scenes", source="cifar")


def test_load_scenes_missing_fashion_mnist_says_what_to_do(tmp_path):
    with pytest.raises(MissingDatasetError, match="source='digits'"):
        load_dataset("scenes", data_root=tmp_path)


def _has_fashion_mnist() -> bool:
    try:
        find_fashion_mnist()
    except MissingDatasetError:
        return False
    return True


@pytest.mark.skipif(not _has_fashion_mnist(), reason="Fashion-MNIST idx files not installed")
def test_load_scenes_from_fashion_mnist():
    bundle = load_dataset("scenes", train_size=20, val_size=8, test_size=8)
    assert bundle.classes[0] == "T-shirt/top" and bundle.info["clutter"] == "sklearn digits"
    masks, boxes = bundle.test.extras["masks"], bundle.test.extras["boxes"]
    tight = masks_to_boxes(masks).float()
    tight[:, 2:] += 1
    assert torch.equal(boxes, tight)
