"""Localization metrics on tiny hand-made sets with hand-computed values."""

from __future__ import annotations

import pytest
import torch

from csg_interp.attribution.boxes import boxes_from_maps, boxes_to_masks
from csg_interp.attribution.localization import (
    box_localization,
    cam_mask_iou,
    energy_pointing_game,
    filter_mask_iou,
    filter_thresholds,
    mask_iou,
    max_box_acc,
    max_box_acc_versions,
)


def test_mask_iou_by_hand():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = torch.zeros(2, 4, 4, dtype=torch.bool)
    a[0, :2, :2] = True  # 4 px
    b[0, :2, 1:3] = True  # 4 px, 2 shared -> 2 / 6
    torch.testing.assert_close(mask_iou(a, b), torch.tensor([2 / 6, 0.0]))  # empty union -> 0


def test_cam_mask_iou_top_30_percent():
    maps = torch.arange(10.0).view(1, 2, 5).repeat(2, 1, 1)  # top 30 % = flat indices 7, 8, 9
    masks = torch.zeros(2, 2, 5, dtype=torch.bool)
    masks[0].view(-1)[[7, 8, 9]] = True  # exact -> IoU 1
    masks[1].view(-1)[[5, 6, 7]] = True  # one shared of five -> 0.2
    result = cam_mask_iou(maps, masks, labels=torch.tensor([0, 1]), num_classes=2)
    torch.testing.assert_close(result.iou, torch.tensor([1.0, 0.2]))
    assert result.hits.tolist() == [True, False]
    assert result.mean_iou == pytest.approx(0.6) and result.hit_rate == 0.5
    assert result.per_class_iou == pytest.approx({0: 1.0, 1: 0.2})
    assert result.per_class_hit_rate == {0: 1.0, 1: 0.0}


def test_cam_mask_iou_hit_is_strictly_above_threshold():
    maps = torch.arange(10.0).view(1, 2, 5)  # keeps flat indices 7, 8, 9
    masks = torch.zeros(1, 2, 5, dtype=torch.bool)
    masks[0].view(-1)[[6, 9]] = True  # shared 1, union 4 -> exactly 0.25
    result = cam_mask_iou(maps, masks, top_fraction=0.3, iou_threshold=0.25)
    assert result.iou.item() == 0.25 and not result.hits.item()


def test_filter_thresholds_rank_rule():
    activations = torch.arange(20.0).view(2, 2, 5, 1).permute(0, 1, 3, 2)  # (2, 2, 1, 5)
    # filter 0 holds 0..4 and 10..14 -> top 30 % of 10 values = 3 values, cut-off 12
    # filter 1 holds 5..9 and 15..19 -> cut-off 17
    assert filter_thresholds(activations).tolist() == [12.0, 17.0]
    assert filter_thresholds(activations, percentile=0).tolist() == [0.0, 5.0]


def filter_fixture():
    """4 images of 4×4, 2 classes; object = left half for class 0, right half for class 1.

    Filter 0 fires on the object of class-0 images only; filter 1 fires on the left half always.
    """
    masks = torch.zeros(4, 4, 4, dtype=torch.bool)
    masks[:2, :, :2] = True
    masks[2:, :, 2:] = True
    labels = torch.tensor([0, 0, 1, 1])
    activations = torch.zeros(4, 2, 4, 4)
    activations[:2, 0, :, :2] = 1.0
    activations[:, 1, :, :2] = 2.0
    return activations, masks, labels


def test_filter_mask_iou_by_hand():
    activations, masks, labels = filter_fixture()
    thresholds = torch.tensor([0.5, 1.0])
    result = filter_mask_iou(activations, masks, labels, num_classes=2, thresholds=thresholds)
    # filter 0: class-0 images IoU 1; class-1 images map all-below 0.5 -> empty -> IoU 0
    # filter 1: left half on every image: IoU 1 for class 0, 0 for class 1
    torch.testing.assert_close(result.iou, torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(result.success, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert result.related_class.tolist() == [0, 0]
    assert result.rfn.tolist() == [2, 0]
    assert result.ap == 1.0 and result.mean_iou == 1.0
    assert result.per_class_ap == {0: 1.0} and result.per_class_iou == {0: 1.0}


def test_filter_mask_iou_thresholds_default_to_the_data():
    activations, masks, labels = filter_fixture()
    result = filter_mask_iou(activations, masks, labels, num_classes=2)
    # filter 0: 16 of 64 values are 1 -> top 30 % (20 values) reaches a 0 -> t = 0 -> whole image
    torch.testing.assert_close(result.iou[:, 0], torch.full((4,), 0.5))
    assert result.success[0].tolist() == [1.0, 1.0]


def test_filter_mask_iou_upsamples_bilinearly_to_the_mask_size():
    activations, masks, labels = filter_fixture()
    big_masks = masks.repeat_interleave(2, 1).repeat_interleave(2, 2)  # 8×8
    result = filter_mask_iou(activations, big_masks, labels, 2, thresholds=torch.tensor([0.5, 1.0]))
    # a 0/1 step upsampled bilinearly crosses 0.5 exactly at the step: the masks are reproduced
    torch.testing.assert_close(result.iou[:2], torch.ones(2, 2))


def test_box_localization_gt_known_and_top1():
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 4)
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0]])
    valid = torch.tensor([True, True, True, False])  # the last box was not found
    result = box_localization(
        boxes, gt, valid=valid, predictions=torch.tensor([1, 0, 0, 0]), labels=torch.tensor([0, 0, 0, 0])
    )  # IoUs 1, 0.5, 0.25, (invalid) 0
    torch.testing.assert_close(result.iou, torch.tensor([1.0, 0.5, 0.25, 0.0]))
    assert result.gt_known_loc == 0.5
    assert result.top1_cls == 0.75
    assert result.top1_loc == 0.25  # only image 1 is both correct and localized


def test_box_localization_bad_input():
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match="both predictions and labels"):
        box_localization(gt, gt, predictions=torch.tensor([0]))
    with pytest.raises(ValueError, match="must pair up"):
        box_localization(torch.zeros(2, 4), gt)
    with pytest.raises(ValueError, match="mismatched sizes"):
        box_localization(gt * 4, gt, image_size=(8, 8))


def distractor_maps() -> tuple[torch.Tensor, torch.Tensor]:
    """3 maps of 10×10: object box (1, 1, 4, 4) at value 1.0, a larger distractor at 0.6."""
    maps = torch.zeros(3, 10, 10)
    maps[:, 1:4, 1:4] = 1.0
    maps[:, 5:10, 5:10] = 0.6
    maps[2] = 0.0
    maps[2, 5:10, 5:10] = 1.0  # image 2 only highlights the distractor
    maps[2, 1:4, 1:4] = 0.6
    gt = torch.tensor([[1.0, 1.0, 4.0, 4.0]] * 3)
    return maps, gt


def test_max_box_acc_v1_sweep_by_hand():
    maps, gt = distractor_maps()
    thresholds = [0.5, 0.7]
    result = max_box_acc(maps, gt, version="v1", thresholds=thresholds)
    # t = 0.5: both blobs kept, the largest is the 5×5 distractor: no hit anywhere
    # t = 0.7: images 0, 1 keep only the object -> hit; image 2 keeps only the distractor
    torch.testing.assert_close(result.accuracy, torch.tensor([[0.0], [2 / 3]]))
    assert result.best_threshold == {0.5: 0.7}
    assert result.max_box_acc == pytest.approx(2 / 3)


def test_max_box_acc_v2_lets_every_component_compete():
    maps, gt = distractor_maps()
    result = max_box_acc(maps, gt, version="v2", thresholds=[0.5, 0.7])
    # t = 0.5: the object's component is there in every image -> IoU 1 everywhere
    assert result.iou_thresholds == (0.3, 0.5, 0.7)
    torch.testing.assert_close(result.accuracy[0], torch.ones(3))
    assert result.max_box_acc == 1.0
    assert result.best_threshold == {0.3: 0.5, 0.5: 0.5, 0.7: 0.5}


def test_one_sweep_for_both_versions_equals_separate_calls():
    maps, gt = distractor_maps()
    both = max_box_acc_versions(maps, gt, ("v1", "v2"), thresholds=[0.5, 0.7])
    for version in ("v1", "v2"):
        alone = max_box_acc(maps, gt, version=version, thresholds=[0.5, 0.7])
        torch.testing.assert_close(both[version].accuracy, alone.accuracy)
        assert both[version].best_threshold == alone.best_threshold


def test_max_box_acc_default_sweep_and_errors():
    maps, gt = distractor_maps()
    result = max_box_acc(maps, gt, version="v1")
    assert len(result.thresholds) == 100 and result.max_box_acc == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown MaxBoxAcc version"):
        max_box_acc(maps, gt, version="v3")
    with pytest.raises(ValueError, match="mismatched sizes"):
        max_box_acc(maps, gt * 4, version="v1")
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        max_box_acc(maps, gt, thresholds=[1.5])


def test_operating_point_from_val_applies_to_test():
    maps, gt = distractor_maps()
    best = max_box_acc(maps, gt, version="v1", thresholds=[0.5, 0.7]).best_threshold[0.5]
    result = boxes_from_maps(maps, best, mode="minmax")
    assert box_localization(result.boxes, gt, valid=result.valid).gt_known_loc == pytest.approx(2 / 3)


def test_energy_pointing_game_by_hand():
    maps = torch.tensor([[[3.0, 1.0], [0.0, -2.0]], [[0.0, 0.0], [0.0, 5.0]], [[-1.0, -1.0], [-1.0, -2.0]]])
    masks = torch.tensor([[[True, False], [False, False]]] * 3)
    result = energy_pointing_game(maps, masks=masks)
    torch.testing.assert_close(result.energy, torch.tensor([0.75, 0.0, 0.0]))
    assert result.valid.tolist() == [True, True, False]
    assert result.hits.tolist() == [True, False, True]  # the third map's max (-1) is first at (0, 0)
    assert result.mean_energy == pytest.approx(0.25)


def test_energy_pointing_game_boxes_equal_masks_for_rectangles():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(4, 6, 7, generator=generator)
    boxes = torch.tensor([[0.0, 0.0, 3.0, 2.0], [1.0, 1.0, 7.0, 6.0], [2.0, 3.0, 4.0, 4.0], [0.0, 0.0, 7.0, 6.0]])
    by_box = energy_pointing_game(maps, boxes=boxes)
    by_mask = energy_pointing_game(maps, masks=boxes_to_masks(boxes, (6, 7)))
    torch.testing.assert_close(by_box.energy, by_mask.energy)
    assert by_box.energy[3].item() == pytest.approx(1.0)


def test_metrics_reject_mismatched_or_bad_ground_truth():
    maps = torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match="mismatched sizes"):
        cam_mask_iou(maps, torch.zeros(2, 16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="must pair up"):
        cam_mask_iou(maps, torch.zeros(3, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="binary"):
        cam_mask_iou(maps, torch.full((2, 8, 8), 0.5))
    with pytest.raises(ValueError, match="exactly one"):
        energy_pointing_game(maps)
    with pytest.raises(ValueError, match="thresholds for 2 filters"):
        filter_mask_iou(torch.rand(2, 2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.bool),
                        torch.tensor([0, 1]), 2, thresholds=torch.ones(3))  # fmt: skip
