"""All-class maps (one forward, every class) and the filter atlas (streaming top-k, regions).

The hand model: a 2×2 / stride-2 conv with three filters and a ReLU, then GAP → linear. On
``x1 = arange(16).view(1, 1, 4, 4)`` the 2×2 block sums are s = [[10, 18], [42, 50]]:
A0 = s, A1 = relu(40 − s) = [[30, 22], [0, 0]], A2 = relu(s − 20) = [[0, 0], [22, 30]].
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from csg_interp.attribution import CSGAttribution, FilterAtlas, filter_atlas
from csg_interp.attribution.localization import filter_mask_iou, gated_activations
from csg_interp.models import SmallCNN
from csg_interp.training import ClassSpecificGate, CSGNet, GAPLinearHead

X1 = torch.arange(16.0).view(1, 1, 4, 4)


def hand_net(gate_rows=((1.0, 0.0, 0.5), (0.0, 1.0, 1.0))) -> CSGNet:
    conv = nn.Conv2d(1, 3, kernel_size=2, stride=2)
    linear = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1, 1).expand(3, 1, 2, 2))
        conv.bias.copy_(torch.tensor([0.0, 40.0, -20.0]))
        linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, -1.0]]))
        linear.bias.copy_(torch.tensor([0.0, 1.0]))
    gate = ClassSpecificGate(2, 3)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor(gate_rows))
    return CSGNet(nn.Sequential(conv, nn.ReLU()), GAPLinearHead(linear), 2, 3, gate).eval()


def small_net(num_classes: int = 4, seed: int = 0) -> CSGNet:
    torch.manual_seed(seed)
    net = CSGNet.from_backbone(SmallCNN(num_classes, 1, (4, 6, 8)), num_classes=num_classes)
    with torch.no_grad():
        net.gate.weight.copy_(torch.rand(num_classes, 8))
    return net.eval()


# ---------------------------------------------------------------- all-class maps
@pytest.mark.parametrize("mode", ["cam", "activation", "top_filters"])
def test_all_class_maps_equal_single_target_calls_class_by_class(mode):
    net = small_net(num_classes=5)
    csg = CSGAttribution.from_net(net, mode=mode, top_n=3)
    x = torch.rand(6, 1, 16, 16)
    maps = csg.attribute_all_classes(x)
    assert maps.shape == (6, 5, 4, 4)
    for c in range(5):
        torch.testing.assert_close(maps[:, c : c + 1], csg.attribute(x, target=c),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    relu = csg.attribute_all_classes(x, relu_attributions=True)
    torch.testing.assert_close(relu, maps.clamp_min(0))


def test_all_class_maps_by_hand_and_tuple_mirrors_input():
    # cam: G⊙W = [[1, 0, 1], [0, 1, -1]] → class 0: A0 + A2, class 1: A1 − A2.
    csg = CSGAttribution.from_net(hand_net())
    maps = csg.attribute_all_classes(X1)
    expected = torch.tensor([[[10.0, 18.0], [64.0, 80.0]], [[30.0, 22.0], [-22.0, -30.0]]])
    torch.testing.assert_close(maps[0], expected)
    (as_tuple,) = csg.attribute_all_classes((X1,))
    torch.testing.assert_close(as_tuple, maps)


def test_all_class_maps_cost_one_forward():
    net = hand_net()
    calls = []
    net.gated_layer.register_forward_hook(lambda *args: calls.append(1))
    CSGAttribution.from_net(net).attribute_all_classes(torch.cat([X1, X1]))
    assert len(calls) == 1


# ---------------------------------------------------------------- the atlas
def _brute_force_top(pooled: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort all N scores per filter: decreasing score, ties to the lower index (np.lexsort)."""
    scores = pooled.numpy()
    n = scores.shape[0]
    order = np.stack(
        [np.lexsort((np.arange(n), -scores[:, f]))[:k] for f in range(scores.shape[1])]
    )
    return order, np.take_along_axis(scores.T, order, axis=1)


@pytest.mark.parametrize("batch_size, top_k", [(7, 5), (3, 11), (64, 4)])
def test_top_k_equals_brute_force_sort_with_ties_by_index(batch_size, top_k):
    net = small_net()
    # Images from a few repeated patterns: many exactly equal pooled activations (ties).
    torch.manual_seed(1)
    patterns = torch.rand(5, 1, 16, 16)
    images = patterns[torch.randint(0, 5, (40,))]
    # Scored in the atlas's batches: the same image can round differently at another batch
    # size (the CPU kernels pick their blocking by shape), which would break exact ties.
    pooled = torch.cat([gated_activations(net, images[i:i + batch_size]).mean(dim=(2, 3))
                        for i in range(0, len(images), batch_size)])  # fmt: skip
    assert len(torch.unique(pooled[:, 0])) < 40  # ties exist
    atlas = filter_atlas(net, images, torch.zeros(8), top_k=top_k, batch_size=batch_size)
    order, scores = _brute_force_top(pooled, top_k)
    np.testing.assert_array_equal(atlas.indices.numpy(), order)
    np.testing.assert_array_equal(atlas.scores.numpy(), scores)


def test_atlas_peak_region_box_and_serving_by_hand():
    # Filter 0 on x1: A0 = [[10, 18], [42, 50]], peak (1, 1). Upsampled to 4×4 (bilinear,
    # align_corners=False) its rows are 10..18, 18..26, 34..42, 42..50: >= 30 keeps rows 2–3,
    # box [0, 2, 4, 4], half the image. Filter 1: A1 = [[30, 22], [0, 0]], peak (0, 0).
    net = hand_net()
    images = torch.cat([X1, torch.zeros(1, 1, 4, 4)])
    labels = torch.tensor([0, 1])
    atlas = filter_atlas(net, (images, labels), torch.tensor([30.0, 25.0, 100.0]), top_k=2)
    assert atlas.indices[0].tolist() == [0, 1]
    torch.testing.assert_close(atlas.scores[0], torch.tensor([30.0, 0.0]))
    assert atlas.indices[1].tolist() == [1, 0]  # A1 = 40 everywhere on zeros: mean 40 > 13
    assert atlas.peaks[0, 0].tolist() == [1, 1]
    assert atlas.peaks[1, 1].tolist() == [0, 0]
    torch.testing.assert_close(atlas.boxes[0, 0], torch.tensor([0.0, 2.0, 4.0, 4.0]))
    assert float(atlas.region_fraction[0, 0]) == 0.5
    assert float(atlas.region_fraction[2, 0]) == 0.0  # t = 100: empty region, zero box
    assert atlas.boxes[2, 0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert atlas.labels[0].tolist() == [0, 1] and atlas.predictions[0].tolist() == [0, 1]
    # Serving: G = [[1, 0, 0.5], [0, 1, 1]] → class 0: filters 0 then 2; class 1: 1, 2 (a tie:
    # the lower index first).
    assert atlas.filters_of(0) == [0, 2]
    assert atlas.filters_of(1) == [1, 2]
    with pytest.raises(ValueError, match="no MI matrix"):
        atlas.filters_of(0, by="mi")
    # Peak centres in image pixels: cell (1, 1) of a 2×2 map on a 4×4 image → (3, 3).
    assert atlas.peak_centres()[0, 0].tolist() == [3.0, 3.0]


def test_atlas_mi_serving_pads_short_data_sets_and_round_trips_json():
    net = hand_net()
    mi = torch.tensor([[0.3, 0.1, 0.2], [0.1, 0.2, 0.1]])
    atlas = filter_atlas(net, X1, torch.zeros(3), mi=mi, top_k=3, class_names=["a", "b"])
    assert atlas.filters_of(0, by="mi") == [0, 2] and atlas.filters_of(1, by="mi") == [1]
    assert atlas.indices[0].tolist() == [0, -1, -1]
    assert torch.isnan(atlas.scores[0, 1:]).all()
    payload = json.loads(json.dumps(atlas.to_dict()))
    assert payload["serving"]["mi"] == {"0": [0, 2], "1": [1]}
    assert len(payload["filters"][0]["top"]) == 1  # padding is not written
    assert payload["filters"][2]["gate_row"] == [0.5, 1.0]
    back = FilterAtlas.from_dict(payload)
    assert back.indices.tolist() == atlas.indices.tolist()
    torch.testing.assert_close(back.boxes, atlas.boxes)
    torch.testing.assert_close(back.gate, atlas.gate)
    torch.testing.assert_close(back.mi, atlas.mi)
    assert back.to_dict() == payload


def test_streamed_localization_equals_filter_mask_iou_on_all_activations():
    net = small_net()
    torch.manual_seed(2)
    images = torch.rand(30, 1, 16, 16)
    labels = torch.randint(0, 4, (30,))
    masks = torch.zeros(30, 16, 16, dtype=torch.bool)
    for i in range(30):
        r, c = np.random.RandomState(i).randint(0, 9, 2)
        masks[i, r : r + 8, c : c + 8] = True
    activations = gated_activations(net, images)
    thresholds = activations.transpose(0, 1).flatten(1).quantile(0.7, dim=1)
    atlas = filter_atlas(net, (images, labels), thresholds, masks=masks, batch_size=8)
    reference = filter_mask_iou(activations, masks, labels, 4, thresholds=thresholds)
    torch.testing.assert_close(atlas.localization["filter_score"], reference.filter_score)
    assert atlas.localization["related_class"].tolist() == reference.related_class.tolist()
    torch.testing.assert_close(atlas.localization["filter_iou"], reference.filter_iou)
    assert atlas.localization["ap"] == pytest.approx(reference.ap)
    record = atlas.filter_record(3)
    assert record["localization_score"] == pytest.approx(float(reference.filter_score[3]))


def test_atlas_errors_name_the_parameter():
    net = hand_net()
    with pytest.raises(ValueError, match="2 thresholds for 3 filters"):
        filter_atlas(net, X1, torch.zeros(2))
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        filter_atlas(net, X1, torch.zeros(3), top_k=0)
    with pytest.raises(ValueError, match="mi must be a C×K matrix"):
        filter_atlas(net, X1, torch.zeros(3), mi=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="forward_features"):
        filter_atlas(nn.Linear(2, 2), X1, torch.zeros(3))


# ---------------------------------------------------------------- the Display
def test_filter_atlas_display_grid_titles_and_outlines():
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from csg_interp.attribution import FilterAtlasDisplay

    net = hand_net()
    images = torch.cat([X1, torch.zeros(1, 1, 4, 4)]) / 15.0  # in [0, 1]
    mi = torch.tensor([[0.3, 0.1, 0.2], [0.1, 0.2, 0.1]])
    # t = 2 / 15 · s: filter 0 fires on x1 where its upsampled map >= 2; the zeros image is flat.
    atlas = filter_atlas(net, images, torch.tensor([2.0, 1.0, 100.0]), mi=mi, top_k=2)
    display = FilterAtlasDisplay.from_atlas(atlas, images, 0)
    try:
        assert display.filters == [0, 2]  # G[0] = [1, 0, 0.5]
        assert display.axes_.shape == (2, 2)
        assert display.axes_[0, 0].get_title() == "#0 f0\nG 1.00 · MI 0.3"
        assert display.axes_[1, 0].get_title().endswith("G 0.50 · MI 0.2")
        # Outlines: filter 0 on x1 only (A0 = 0 on the zeros image, filter 2's t_k = 100).
        assert len(display.outlines_) == 1
        assert "Class 0" in display.caption and "t_k" in display.caption
        # Loaded from JSON (no maps): the saved box is drawn instead of a contour.
        loaded = FilterAtlas.from_dict(atlas.to_dict())
        boxed = FilterAtlasDisplay.from_atlas(loaded, dict(enumerate(images)), 1, by="mi")
        assert boxed.filters == [1] and len(boxed.outlines_) == 2
        with pytest.raises(ValueError, match="no filter serves class 1 by gate"):
            FilterAtlasDisplay(filter_atlas(net, images, torch.zeros(3), gate=torch.zeros(2, 3)),
                               images, 1)  # fmt: skip
        with pytest.raises(ValueError, match="need 4 axes"):
            display.plot(axes=plt.subplots(1, 2)[1])
    finally:
        plt.close("all")
