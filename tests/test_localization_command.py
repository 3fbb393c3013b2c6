"""Maps of a network, the val→test protocol and ``csg-interp localize`` on the tiny digits pair."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from csg_interp.attribution.boxes import upsample_maps
from csg_interp.attribution.localization import evaluate_maps, localization_maps
from csg_interp.models import SmallCNN
from csg_interp.training import CSGNet


def cam_at_layer(net: CSGNet, x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        a = net.features(x)
        coefficients = gate[y] * net.linear_head.weight[y]
        return (coefficients[:, :, None, None] * a).sum(1)


def test_cam_csg_and_gradcam_maps_agree_with_their_definitions(small_net):
    x, y = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 1])
    ones = torch.ones(3, 5)
    cam = cam_at_layer(small_net, x, y, ones)
    csg = cam_at_layer(small_net, x, y, small_net.gate.weight.detach())
    torch.testing.assert_close(localization_maps(small_net, x, y, "cam"), upsample_maps(cam, (16, 16)))
    torch.testing.assert_close(localization_maps(small_net, x, y, "csg"), upsample_maps(csg, (16, 16)))
    # GAP -> linear head: Grad-CAM's channel weights are W[c, k] / (h·w), so Grad-CAM = ReLU(CAM)/(h·w)
    h, w = cam.shape[-2:]
    expected = upsample_maps(cam.clamp_min(0) / (h * w), (16, 16))
    torch.testing.assert_close(localization_maps(small_net, x, y, "gradcam"), expected)


def test_batched_maps_equal_one_by_one(small_net):
    x, y = torch.rand(5, 1, 16, 16), torch.tensor([0, 1, 2, 1, 0])
    batched = localization_maps(small_net, x, y, "gradcam", batch_size=2)
    single = torch.cat([localization_maps(small_net, x[i : i + 1], y[i : i + 1], "gradcam") for i in range(5)])
    torch.testing.assert_close(batched, single)


def test_gradcam_plus_plus_maps_are_scaled_to_unit_range(small_net):
    pytest.importorskip("pytorch_grad_cam")
    maps = localization_maps(small_net, torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 2]), "gradcam++")
    assert maps.shape == (3, 16, 16)
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_map_methods_bad_input(small_net):
    x, y = torch.rand(2, 1, 16, 16), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="unknown method"):
        localization_maps(small_net, x, y, "scorecam")
    std = CSGNet.from_backbone(SmallCNN(num_classes=3, in_channels=1), num_classes=3, gate=False).eval()
    with pytest.raises(ValueError, match="needs a CSG model"):
        localization_maps(std, x, y, "csg")
    with pytest.raises(ValueError, match="out of range"):
        localization_maps(small_net, x, torch.tensor([0, 3]), "cam")


def test_evaluate_maps_chooses_the_threshold_on_val_only():
    """Val maps favour a high threshold; test maps would favour a low one -- val wins."""
    gt = torch.tensor([[1.0, 1.0, 4.0, 4.0]] * 2)
    val = torch.zeros(2, 10, 10)
    val[:, 1:4, 1:4] = 1.0
    val[:, 5:10, 5:10] = 0.6  # a bigger distractor: only thresholds above 0.6 isolate the object
    test = torch.zeros(2, 10, 10)
    test[:, 1:4, 1:4] = 0.3  # the object is weak on test: only thresholds <= 0.3 keep it
    test[:, 0, 9] = 1.0
    masks = torch.zeros(2, 10, 10, dtype=torch.bool)
    masks[:, 1:4, 1:4] = True
    result = evaluate_maps(val, gt, test, gt, masks, thresholds=torch.tensor([0.2, 0.7]))
    assert result["threshold"] == pytest.approx(0.7)
    assert result["gt_known_loc"] == 0.0  # at 0.7 only the stray test pixel survives
    assert result["max_box_acc_v1"] == 1.0  # MaxBoxAcc maximises over the sweep on test by definition
    # top 30 % = 30 px, but the 30th largest value is 0: with ties every pixel is kept
    assert result["mask_iou"] == pytest.approx(0.09) and result["mask_hit_rate"] == 0.0


def test_localize_writes_metrics_and_overlays(tiny_digits_pair, tmp_path):
    from csg_interp.cli import main

    out = tmp_path / "loc"
    code = main([
        "localize", str(tiny_digits_pair["csg"]), "--baseline", str(tiny_digits_pair["std"]),
        "--val-size", "24", "--test-size", "30", "--sweep-step", "0.1", "--overlays", "3",
        "--methods", "csg", "cam", "gradcam", "--device", "cpu", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["test_images"] == 30 and metrics["data"]["scenes_from_items"]
    assert set(metrics["models"]) == {"csg", "std"}
    assert set(metrics["models"]["csg"]["methods"]) == {"csg", "cam", "gradcam"}
    assert set(metrics["models"]["std"]["methods"]) == {"cam", "gradcam"}  # no gate, no csg maps
    for model in metrics["models"].values():
        assert 0.0 <= model["top1_cls"] <= 1.0
        assert len(model["filters"]["rfn"]) == 10
        for values in model["methods"].values():
            for key in ("gt_known_loc", "top1_loc", "max_box_acc_v1", "max_box_acc_v2", "mask_iou",
                        "energy_pointing"):  # fmt: skip
                assert 0.0 <= values[key] <= 1.0
            assert values["top1_loc"] <= values["gt_known_loc"]
            assert round(values["threshold"] * 10) == pytest.approx(values["threshold"] * 10)
    overlays = sorted(p.name for p in out.glob("overlays_*.png"))
    assert overlays == [
        "overlays_csg_cam.png", "overlays_csg_csg.png", "overlays_csg_gradcam.png",
        "overlays_std_cam.png", "overlays_std_gradcam.png",
    ]  # fmt: skip


def test_localize_rejects_data_without_boxes():
    from csg_interp.workflows.localize import localization_data

    run = SimpleNamespace(config=SimpleNamespace(dataset="cifar10"))
    with pytest.raises(ValueError, match="has no boxes"):
        localization_data(run, 10, 10)


def test_localize_bad_options(tiny_digits_pair, tmp_path):
    from csg_interp.workflows.localize import localize_runs

    with pytest.raises(ValueError, match="sweep-step"):
        localize_runs(str(tiny_digits_pair["csg"]), sweep_step=0.0, out=str(tmp_path))
    with pytest.raises(ValueError, match="unknown method"):
        localize_runs(str(tiny_digits_pair["csg"]), methods=["bogus"], val_size=8, test_size=8,
                      out=str(tmp_path), device="cpu")  # fmt: skip
