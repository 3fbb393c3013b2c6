"""Per-image hits, the paired bootstrap, extra methods in localize_net, and released hooks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from csg_interp.attribution.boxes import boxes_from_maps
from csg_interp.attribution.localization import (
    box_localization,
    evaluate_maps,
    gt_known_hits,
    localization_maps,
)
from csg_interp.metrics import paired_bootstrap_interval
from csg_interp.training import CSGNet


def _scenes(count: int, seed: int) -> SimpleNamespace:
    """A split with random 16×16 images, labels in 0..2 and one random box + mask per image."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 16, 16, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    corner = torch.randint(0, 8, (count, 2), generator=generator).float()
    boxes = torch.cat([corner, corner + 8], dim=1)
    masks = torch.zeros(count, 16, 16, dtype=torch.bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        masks[i, y0:y1, x0:x1] = True
    return SimpleNamespace(tensors=lambda: (images, labels),
                           extras={"boxes": boxes, "masks": masks})  # fmt: skip


# ------------------------------------------------------------------------------ gt_known_hits
def test_gt_known_hits_by_hand():
    maps = torch.zeros(3, 8, 8)
    maps[0, 0:4, 0:4] = 1.0  # exactly the box: IoU 1
    maps[1, 0:4, 0:2] = 1.0  # half the box: IoU 0.5 counts (>=)
    maps[2, 4:8, 4:8] = 1.0  # elsewhere: IoU 0
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 3)
    assert gt_known_hits(maps, gt, 0.5).tolist() == [True, True, False]
    assert gt_known_hits(maps, gt, 0.5, iou_threshold=0.6).tolist() == [True, False, False]


def test_gt_known_hits_average_to_evaluate_maps_gt_known_loc():
    torch.manual_seed(1)
    val_maps, test_maps = torch.rand(6, 16, 16), torch.rand(10, 16, 16)
    for i in range(10):
        test_maps[i, i % 8 : i % 8 + 6, 2:9] += 2.0  # a blob on most images' boxes
    boxes = torch.tensor([[2.0, float(i % 8), 9.0, float(i % 8 + 6)] for i in range(10)])
    val_boxes = boxes[:6]
    masks = torch.zeros(10, 16, 16, dtype=torch.bool)
    metrics = evaluate_maps(val_maps, val_boxes, test_maps, boxes, masks,
                            thresholds=torch.arange(0.0, 1.0, 0.1))  # fmt: skip
    hits = gt_known_hits(test_maps, boxes, metrics["threshold"])
    assert hits.dtype == torch.bool and hits.shape == (10,)
    assert float(hits.float().mean()) == pytest.approx(metrics["gt_known_loc"])
    found = boxes_from_maps(test_maps, metrics["threshold"], mode="minmax")
    loc = box_localization(found.boxes, boxes, valid=found.valid)
    assert float(hits.float().mean()) == pytest.approx(loc.gt_known_loc)


# ------------------------------------------------------------------- paired_bootstrap_interval
def test_paired_bootstrap_equals_a_loop_over_resamples():
    rng = np.random.RandomState(3)
    a, b = rng.rand(40) > 0.3, rng.rand(40) > 0.5
    low, high = paired_bootstrap_interval(a, b, resamples=300, seed=7, confidence=0.9)
    draws = np.random.RandomState(7).randint(0, 40, size=(300, 40))
    diffs = [a[row].mean() - b[row].mean() for row in draws]
    assert (low, high) == pytest.approx((np.percentile(diffs, 5), np.percentile(diffs, 95)))
    assert low <= a.mean() - b.mean() <= high


def test_paired_bootstrap_of_a_constant_difference_is_that_difference():
    a = np.linspace(0.0, 1.0, 25)
    assert paired_bootstrap_interval(a + 0.25, a, resamples=100) == pytest.approx((0.25, 0.25))
    assert paired_bootstrap_interval(a, a, resamples=100) == (0.0, 0.0)


def test_paired_bootstrap_bad_input():
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_interval(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_interval(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap_interval(np.ones(3), np.ones(3), resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_interval(np.ones(3), np.ones(3), confidence=1.0)


# --------------------------------------------------------------------- localize_net extra maps
def test_localize_net_scores_an_extra_method_like_a_builtin(small_net):
    from csg_interp.workflows.localize import localize_net

    val, test = _scenes(12, 0), _scenes(20, 1)

    def cam_again(images, targets):
        return localization_maps(small_net, images, targets, "cam")

    summary, maps = localize_net(small_net, val, test, ["cam"], 0.1,
                                 extra_methods={"my_cam": cam_again})  # fmt: skip
    assert list(summary["methods"]) == ["cam", "my_cam"]
    builtin, extra = summary["methods"]["cam"], summary["methods"]["my_cam"]
    assert {k: v for k, v in builtin.items() if k != "seconds"} == pytest.approx(
        {k: v for k, v in extra.items() if k != "seconds"}
    )
    torch.testing.assert_close(maps["my_cam"], maps["cam"])


def test_localize_net_refuses_an_extra_method_named_like_a_builtin(small_net):
    from csg_interp.workflows.localize import localize_net

    with pytest.raises(ValueError, match="built-in names: gradcam"):
        localize_net(small_net, _scenes(4, 0), _scenes(4, 1), ["cam"],
                     extra_methods={"gradcam": lambda images, targets: images[:, 0]})  # fmt: skip


# --------------------------------------------------------------------------- cam_class, hooks
def _hook_counts(net: CSGNet) -> tuple[int, int]:
    layer = net.gated_layer
    return len(layer._forward_hooks), len(layer._backward_hooks) + len(
        getattr(layer, "_backward_pre_hooks", {})
    )


def test_gradcam_plus_plus_releases_its_hooks_also_after_an_error(small_net):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAMPlusPlus

    before = _hook_counts(small_net)
    x, y = torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 2])
    localization_maps(small_net, x, y, "gradcam++")
    assert _hook_counts(small_net) == before

    class Failing(GradCAMPlusPlus):
        def get_cam_weights(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        localization_maps(small_net, x, y, "gradcam++", cam_class=Failing)
    assert _hook_counts(small_net) == before
    assert not small_net.training


def test_cam_class_replaces_gradcam_plus_plus_weights(small_net):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAMPlusPlus

    class OnlyFilterTwo(GradCAMPlusPlus):
        def get_cam_weights(self, *args, **kwargs):
            weights = np.zeros_like(super().get_cam_weights(*args, **kwargs))
            weights[:, 2] = 1.0
            return weights

    from pytorch_grad_cam.utils.image import scale_cam_image

    x, y = torch.rand(2, 1, 16, 16), torch.tensor([0, 2])
    maps = localization_maps(small_net, x, y, "gradcam++", cam_class=OnlyFilterTwo)
    with torch.no_grad():
        filter_two = small_net.forward_features(x)[:, 2].clamp_min(0).numpy()
    # weight 1 on filter 2, 0 elsewhere: ReLU(A_2), min-max scaled and resized per layer, then
    # min-max scaled again over layers, as pytorch-grad-cam does
    expected = scale_cam_image(scale_cam_image(filter_two, (16, 16)))
    torch.testing.assert_close(maps, torch.from_numpy(expected), atol=1e-4, rtol=1e-4)


def test_cam_class_with_another_method_is_refused(small_net):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAMPlusPlus

    x, y = torch.rand(2, 1, 16, 16), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="only; got method 'cam'"):
        localization_maps(small_net, x, y, "cam", cam_class=GradCAMPlusPlus)
