"""Boxes from maps: thresholds, components, IoU and bad input, on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from csg_interp.attribution.boxes import (
    THRESHOLD_MODES,
    all_component_boxes,
    as_map_batch,
    boxes_from_masks,
    boxes_from_maps,
    boxes_to_masks,
    check_boxes,
    component_boxes,
    paired_box_iou,
    threshold_maps,
    upsample_maps,
)


def two_blob_map() -> torch.Tensor:
    """A 10×12 map: a 3×4 blob of 1.0 (rows 1-3, cols 6-9), a 2×2 blob of 0.5, background 0."""
    m = torch.zeros(10, 12)
    m[1:4, 6:10] = 1.0
    m[7:9, 1:3] = 0.5
    return m


def test_max_fraction_keeps_pixels_at_or_above_fraction_of_max():
    m = torch.tensor([[0.0, 0.1, 1.0], [0.0, 0.15, 0.5]])
    masks, valid = threshold_maps(m, 0.15, "max_fraction")
    assert masks[0].tolist() == [[False, False, True], [False, True, True]]
    assert valid.tolist() == [True]


def test_minmax_normalises_before_thresholding():
    m = torch.tensor([[-1.0, 0.0, 1.0]])  # normalised: 0, 0.5, 1
    masks, _ = threshold_maps(m, 0.5, "minmax")
    assert masks[0].tolist() == [[False, True, True]]


def test_percentile_keeps_the_top_share_and_ties():
    m = torch.arange(10.0).view(2, 5)
    masks, _ = threshold_maps(m, 70, "percentile")  # top 30 % of 10 pixels = 7, 8, 9
    assert masks.flatten().nonzero().flatten().tolist() == [7, 8, 9]
    tied = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    masks, _ = threshold_maps(tied, 80, "percentile")  # 1 pixel asked, ties with it are kept
    assert masks[0].tolist() == [[False, True, True, True, False]]


def test_otsu_splits_a_bimodal_map_between_its_modes():
    m = torch.zeros(8, 8)
    m[:, :3] = 0.9
    m[:, 3:] = 0.1
    m[0, 0] = 1.0
    masks, valid = threshold_maps(m, mode="otsu")
    assert valid.item()
    assert masks[0][:, :3].all() and not masks[0][:, 3:].any()


def test_otsu_refuses_a_threshold():
    with pytest.raises(ValueError, match="chooses its own threshold"):
        threshold_maps(torch.rand(4, 4), 0.5, "otsu")


@pytest.mark.parametrize("mode", THRESHOLD_MODES)
@pytest.mark.parametrize("value", [0.0, 3.0])
def test_constant_map_gives_an_empty_flagged_box(mode, value):
    result = boxes_from_maps(torch.full((2, 6, 6), value), mode=mode)
    assert result.valid.tolist() == [False, False]
    assert torch.equal(result.boxes, torch.zeros(2, 4))
    assert not result.masks.any()


def test_max_fraction_without_positive_evidence_is_flagged():
    result = boxes_from_maps(-torch.rand(1, 5, 5) - 0.1, mode="max_fraction")
    assert result.valid.tolist() == [False]


def test_component_boxes_are_exact_and_sorted_by_area():
    boxes, areas = component_boxes(two_blob_map() > 0)
    assert boxes.tolist() == [[6.0, 1.0, 10.0, 4.0], [1.0, 7.0, 3.0, 9.0]]
    assert areas.tolist() == [12, 4]


def test_diagonal_pixels_are_one_component():
    mask = torch.eye(4, dtype=torch.bool)
    boxes, areas = component_boxes(mask)
    assert boxes.tolist() == [[0.0, 0.0, 4.0, 4.0]] and areas.tolist() == [4]


def test_largest_and_union_boxes():
    m = two_blob_map()
    assert boxes_from_maps(m, 0.15).boxes.tolist() == [[6.0, 1.0, 10.0, 4.0]]
    assert boxes_from_maps(m, 0.15, component="union").boxes.tolist() == [[1.0, 1.0, 10.0, 9.0]]
    # at 0.6·max only the strong blob survives
    assert boxes_from_maps(m, 0.6, component="union").boxes.tolist() == [[6.0, 1.0, 10.0, 4.0]]
    assert [b.tolist() for b in all_component_boxes(m, 0.15)] == [
        [[6.0, 1.0, 10.0, 4.0], [1.0, 7.0, 3.0, 9.0]]
    ]


def test_batch_equals_loop():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 1, 9, 11, generator=generator) ** 4
    batch = boxes_from_maps(maps, 0.3)
    for index in range(5):
        single = boxes_from_maps(maps[index, 0], 0.3)
        assert torch.equal(batch.boxes[index], single.boxes[0])
        assert torch.equal(batch.masks[index], single.masks[0])


def test_numpy_maps_are_accepted():
    result = boxes_from_maps(two_blob_map().numpy(), 0.15)
    assert result.boxes.tolist() == [[6.0, 1.0, 10.0, 4.0]]


@settings(max_examples=30, deadline=None)
@given(
    x1=st.integers(0, 9), y1=st.integers(0, 7), w=st.integers(1, 6), h=st.integers(1, 5),
    component=st.sampled_from(["largest", "union"]),
)  # fmt: skip
def test_rectangle_mask_roundtrips_through_boxes(x1, y1, w, h, component):
    box = torch.tensor([[x1, y1, min(x1 + w, 12), min(y1 + h, 10)]], dtype=torch.float32)
    mask = boxes_to_masks(box, (10, 12))
    area = (box[0, 2] - box[0, 0]) * (box[0, 3] - box[0, 1])
    assert int(mask.sum()) == int(area)
    boxes, valid = boxes_from_masks(mask, component)
    assert valid.item() and torch.equal(boxes, box)


def test_paired_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 4.0, 4.0], [5.0, 5.0, 6.0, 6.0], [2.0, 2.0, 2.0, 2.0]])
    # overlap 2 px of a 6 px union; identical; disjoint; two empty boxes -> 0, not NaN
    torch.testing.assert_close(paired_box_iou(a, b), torch.tensor([2 / 6, 1.0, 0.0, 0.0]))


def test_upsample_maps_shapes_and_identity():
    maps = torch.rand(3, 1, 4, 4)
    assert upsample_maps(maps, (16, 12)).shape == (3, 16, 12)
    torch.testing.assert_close(upsample_maps(maps, (4, 4)), maps[:, 0])
    assert torch.equal(upsample_maps(torch.ones(2, 4, 4), (8, 8)), torch.ones(2, 8, 8))


@pytest.mark.parametrize(
    "maps, match",
    [
        (torch.rand(2, 3, 4, 4), "one channel"),
        (torch.rand(4), r"\(H, W\), \(N, H, W\)"),
        (torch.tensor([[float("nan"), 1.0]]), "NaN"),
        (torch.zeros(0, 4, 4), "must not be empty"),
    ],
)
def test_bad_maps_raise(maps, match):
    with pytest.raises(ValueError, match=match):
        as_map_batch(maps)


def test_bad_threshold_and_mode_raise():
    with pytest.raises(ValueError, match="unknown threshold mode"):
        threshold_maps(torch.rand(4, 4), 0.5, "mean")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        threshold_maps(torch.rand(4, 4), 1.5, "max_fraction")
    with pytest.raises(ValueError, match=r"must lie in \[0, 100\]"):
        threshold_maps(torch.rand(4, 4), 150, "percentile")
    with pytest.raises(ValueError, match="unknown component"):
        boxes_from_maps(torch.rand(4, 4), component="biggest")


def test_boxes_in_the_wrong_format_raise():
    xywh_looking = torch.tensor([[10.0, 10.0, 4.0, 4.0]])  # x2 < x1: not xyxy
    with pytest.raises(ValueError, match="not xyxy.*box_convert"):
        check_boxes(xywh_looking)
    with pytest.raises(ValueError, match=r"must be \(N, 4\)"):
        check_boxes(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        check_boxes(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]))


def test_boxes_and_maps_of_mismatched_sizes_raise():
    with pytest.raises(ValueError, match="mismatched sizes"):
        check_boxes(torch.tensor([[0.0, 0.0, 64.0, 64.0]]), image_size=(16, 16))
    with pytest.raises(ValueError, match="must pair up"):
        check_boxes(torch.zeros(2, 4), count=3)


def test_component_boxes_of_an_empty_mask():
    boxes, areas = component_boxes(np.zeros((4, 4), dtype=bool))
    assert boxes.shape == (0, 4) and areas.shape == (0,)
