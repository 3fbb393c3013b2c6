"""Display objects: array/artist assertions, composite figures, a few image baselines.

Artist assertions are the default (the drawn QuadMesh holds the class-sorted matrix, tick labels
are the class names); ``check_figures_equal`` compares composites with a hand-drawn reference;
pytest-mpl baselines (tests/baseline/, ``--mpl`` in addopts) catch visual regressions of the main
figures. Regenerate baselines with
``pytest tests/test_displays.py --mpl-generate-path=tests/baseline``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from matplotlib.testing.decorators import check_figures_equal  # noqa: E402
from torch import nn  # noqa: E402

from csg_interp.attribution.displays import (  # noqa: E402
    AttributionOverlayDisplay,
    ClassFiltersDisplay,
    GateHeatmapDisplay,
    GateWeightPanelsDisplay,
    MIComparisonDisplay,
    MIHeatmapDisplay,
    class_sorted_order,
    upsample_map,
)
from csg_interp.training import ClassSpecificGate, CSGNet, GAPLinearHead  # noqa: E402

# Filter k's assigned class is argmax over the column: filter 0 → b (0.8), 1 → a (0.9),
# 2 → b (0.5), 3 → a (1.0). Sorted by class, then by decreasing value: 3, 1, 0, 2.
GATE = np.array(
    [
        [0.1, 0.9, 0.0, 1.0],
        [0.8, 0.2, 0.5, 0.0],
        [0.2, 0.3, 0.4, 0.1],
    ]
)
SORTED_GATE = np.array(
    [
        [1.0, 0.9, 0.1, 0.0],
        [0.0, 0.2, 0.8, 0.5],
        [0.1, 0.3, 0.2, 0.4],
    ]
)
CLASSES = ["ankle boot", "bag", "coat"]
MPL_COMPARE = dict(
    baseline_dir="baseline", remove_text=True, style="default", tolerance=2,
    savefig_kwargs={"dpi": 50},
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def tiny_net(gate: np.ndarray | None, weight: np.ndarray) -> CSGNet:
    """A CSGNet for grey images: filter k is ``(k + 1) · pixel`` (a 1×1 conv, then ReLU); the head
    is GAP → W."""
    num_classes, num_filters = weight.shape
    conv = nn.Conv2d(1, num_filters, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1.0, num_filters + 1).view(-1, 1, 1, 1))
    linear = nn.Linear(num_filters, num_classes)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        linear.bias.zero_()
    csg_gate = None
    if gate is not None:
        csg_gate = ClassSpecificGate(num_classes, num_filters)
        with torch.no_grad():
            csg_gate.weight.copy_(torch.as_tensor(gate, dtype=torch.float32))
    features = nn.Sequential(conv, nn.ReLU())
    return CSGNet(features, GAPLinearHead(linear), num_classes, num_filters, csg_gate, 1).eval()


# ------------------------------------------------------------------ class order
def test_class_sorted_order_by_class_then_value():
    assert class_sorted_order(GATE).tolist() == [3, 1, 0, 2]
    np.testing.assert_array_equal(GATE[:, class_sorted_order(GATE)], SORTED_GATE)


def test_class_sorted_order_ties_go_to_lowest_class_and_index():
    # Column 0 ties between classes 0 and 1 → class 0; columns 1 and 2 tie in value → index
    # order.
    matrix = np.array([[0.5, 0.0, 0.0], [0.5, 1.0, 1.0]])
    assert class_sorted_order(matrix).tolist() == [0, 1, 2]


def test_class_sorted_order_accepts_tensors():
    assert class_sorted_order(torch.tensor(GATE)).tolist() == [3, 1, 0, 2]


# ------------------------------------------------------------------ gate heatmap
def test_gate_heatmap_mesh_is_class_sorted_gate_with_class_names():
    display = GateHeatmapDisplay.from_gate(GATE, CLASSES)
    mesh = display.ax_.collections[0]
    assert mesh is display.mesh_
    np.testing.assert_allclose(np.asarray(mesh.get_array()), SORTED_GATE)
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == CLASSES
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["3", "1", "0", "2"]
    assert display.colorbar_ is not None and mesh.get_clim() == (0.0, 1.0)
    assert display.figure_ is display.ax_.figure
    assert "block diagonal" in display.caption
    # White lines between the class blocks: a | b | c starts at columns 2 and 4 → one line at 2.
    assert [line.get_xdata()[0] for line in display.ax_.lines] == [2]


def test_gate_heatmap_unsorted_keeps_order_and_says_nothing_about_blocks():
    display = GateHeatmapDisplay.from_gate(GATE, CLASSES, sort=False)
    np.testing.assert_allclose(np.asarray(display.mesh_.get_array()), GATE)
    assert "block diagonal" not in display.caption
    assert display.ax_.get_xlabel() == "filter"
    assert len(display.ax_.lines) == 0


def test_gate_heatmap_from_net_equals_from_gate_and_draws_on_given_axes():
    net = tiny_net(GATE, np.ones_like(GATE))
    _, ax = plt.subplots()
    display = GateHeatmapDisplay.from_net(net, CLASSES, ax=ax)
    assert display.ax_ is ax
    np.testing.assert_allclose(np.asarray(display.mesh_.get_array()), SORTED_GATE, atol=1e-7)


def test_gate_heatmap_default_class_names_are_indices():
    display = GateHeatmapDisplay.from_gate(torch.tensor(GATE))
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["0", "1", "2"]


def test_gate_heatmap_many_filters_have_no_filter_labels():
    gate = np.random.default_rng(0).random((3, 50))
    display = GateHeatmapDisplay.from_gate(gate)
    assert display.ax_.get_xticklabels() == []
    np.testing.assert_allclose(
        np.asarray(display.mesh_.get_array()), gate[:, class_sorted_order(gate)]
    )


def test_gate_heatmap_errors():
    with pytest.raises(ValueError, match="no gate"):
        GateHeatmapDisplay.from_net(tiny_net(None, np.ones_like(GATE)))
    with pytest.raises(ValueError, match="3 classes"):
        GateHeatmapDisplay.from_gate(GATE, ["a", "b"])
    with pytest.raises(ValueError, match="2 dimension"):
        GateHeatmapDisplay.from_gate(GATE[0])
    with pytest.raises(ValueError, match="NaN"):
        GateHeatmapDisplay.from_gate(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="permutation"):
        GateHeatmapDisplay(GATE, CLASSES, filter_order=[0, 0, 1, 2])


# ------------------------------------------------------------------ MI heatmap
def test_mi_heatmap_sorted_by_most_informative_class():
    mi = np.array([[0.02, 0.30, 0.01], [0.25, 0.01, 0.00]])
    display = MIHeatmapDisplay.from_matrix(mi, ["x", "y"])
    np.testing.assert_allclose(
        np.asarray(display.mesh_.get_array()), [[0.30, 0.01, 0.02], [0.01, 0.00, 0.25]]
    )
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["x", "y"]
    assert display.colorbar_.ax.get_ylabel() == "MI (nats)"
    assert display.mesh_.get_clim() == (0.0, 0.30)


def test_mi_heatmap_rejects_negative_mi():
    with pytest.raises(ValueError, match="non-negative"):
        MIHeatmapDisplay.from_matrix(np.array([[0.1, -0.2]]))


# ------------------------------------------------------------ four-panel figure
# G: filter 0 → class 0 (1.0), filter 1 → class 1, filter 2 ties (0.5, 0.5) → class 0;
# order 0, 2, 1.
PANEL_GATE = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
PANEL_W_CSG = np.array([[2.0, -2.0, 0.0], [0.0, 2.0, -2.0]])  # min-max: (W + 2) / 4
PANEL_W_STD = np.array([[0.0, 4.0], [4.0, 0.0]])  # own order: filter 1 (class 0), filter 0
EXPECTED_PANELS = {
    "gate": [[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]],
    "csg_weight": [[1.0, 0.5, 0.0], [0.5, 0.0, 1.0]],
    "std_weight": [[1.0, 0.0], [0.0, 1.0]],
    # G ⊙ W = [[2, 0, 0], [0, 2, -1]] → (x + 1) / 3, then columns 0, 2, 1.
    "gated_weight": [[1.0, 1 / 3, 1 / 3], [1 / 3, 0.0, 1.0]],
}


def test_four_panel_arrays_are_scaled_and_sorted():
    display = GateWeightPanelsDisplay.from_nets(
        tiny_net(PANEL_GATE, PANEL_W_CSG), tiny_net(None, PANEL_W_STD), ["a", "b"]
    )
    assert list(display.panels) == ["gate", "csg_weight", "std_weight", "gated_weight"]
    for mesh, (name, expected) in zip(display.meshes_, EXPECTED_PANELS.items()):
        np.testing.assert_allclose(np.asarray(mesh.get_array()), expected, atol=1e-6, err_msg=name)
    assert display.csg_order.tolist() == [0, 2, 1]
    assert display.std_order.tolist() == [1, 0]
    assert [ax.get_title() for ax in display.axes_] == list(GateWeightPanelsDisplay.titles.values())
    assert "block diagonal" in display.caption


@check_figures_equal(extensions=["png"])
def test_four_panel_figure_equals_hand_drawn_reference(fig_test, fig_ref):
    GateWeightPanelsDisplay(PANEL_GATE, PANEL_W_CSG, PANEL_W_STD, ["a", "b"]).plot(
        axes=fig_test.subplots(4, 1)
    )
    ticks = {"gate": ["0", "2", "1"], "csg_weight": ["0", "2", "1"],
             "std_weight": ["1", "0"], "gated_weight": ["0", "2", "1"]}
    for ax, (name, expected) in zip(fig_ref.subplots(4, 1), EXPECTED_PANELS.items()):
        sns.heatmap(np.array(expected), ax=ax, cmap="viridis", vmin=0.0, vmax=1.0,
                    cbar_kws={"label": "scaled"}, xticklabels=ticks[name], yticklabels=["a", "b"])
        ax.set_yticklabels(["a", "b"], rotation=0)
        ax.set_ylabel("class")
        ax.set_title(GateWeightPanelsDisplay.titles[name])
        ax.set_xlabel("filter (sorted by assigned class)")


def test_four_panel_errors():
    with pytest.raises(ValueError, match="do not match its gate"):
        GateWeightPanelsDisplay(PANEL_GATE, PANEL_W_STD, PANEL_W_STD)
    with pytest.raises(ValueError, match="classes"):
        GateWeightPanelsDisplay(PANEL_GATE, PANEL_W_CSG, np.ones((3, 2)))
    with pytest.raises(ValueError, match="no gate"):
        GateWeightPanelsDisplay.from_nets(tiny_net(None, PANEL_W_STD), tiny_net(None, PANEL_W_STD))
    with pytest.raises(ValueError, match="4 axes"):
        GateWeightPanelsDisplay(PANEL_GATE, PANEL_W_CSG, PANEL_W_STD).plot(
            axes=plt.subplots(2, 1)[1]
        )


# ------------------------------------------------------------- MI comparison
def test_mi_comparison_shares_one_scale_and_titles_carry_mis():
    csg = np.array([[0.30, 0.00], [0.00, 0.20]])  # MIS = mean(0.30, 0.20) = 0.25
    std = np.array([[0.10, 0.05], [0.05, 0.10]])  # MIS = mean(0.10, 0.10) = 0.10
    display = MIComparisonDisplay.from_matrices(csg, std, ["a", "b"])
    assert display.scores == pytest.approx({"CSG": 0.25, "STD": 0.10})
    assert [mesh.get_clim() for mesh in display.meshes_] == [(0.0, 0.30), (0.0, 0.30)]
    assert [ax.get_title() for ax in display.axes_] == [
        "CSG model: MIS = 0.2500", "STD model: MIS = 0.1000",
    ]
    np.testing.assert_allclose(np.asarray(display.meshes_[0].get_array()), csg)
    # STD: filter 0 → a (0.10), filter 1 → b; already sorted.
    np.testing.assert_allclose(np.asarray(display.meshes_[1].get_array()), std)


@check_figures_equal(extensions=["png"])
def test_mi_comparison_figure_equals_hand_drawn_reference(fig_test, fig_ref):
    csg = np.array([[0.00, 0.30], [0.20, 0.00]])  # sorted: filter 1 (a), filter 0 (b)
    std = np.array([[0.10, 0.05], [0.05, 0.10]])  # already sorted
    MIComparisonDisplay(csg, std, ["a", "b"]).plot(axes=fig_test.subplots(2, 1))
    references = [("CSG model: MIS = 0.2500", [[0.30, 0.00], [0.00, 0.20]], ["1", "0"]),
                  ("STD model: MIS = 0.1000", std, ["0", "1"])]
    for ax, (title, matrix, ticks) in zip(fig_ref.subplots(2, 1), references):
        sns.heatmap(np.array(matrix), ax=ax, cmap="viridis", vmin=0.0, vmax=0.30,
                    cbar_kws={"label": "MI (nats)"}, xticklabels=ticks, yticklabels=["a", "b"])
        ax.set_yticklabels(["a", "b"], rotation=0)
        ax.set_ylabel("class")
        ax.set_title(title)
        ax.set_xlabel("filter (sorted by assigned class)")


def test_mi_comparison_names_the_models():
    display = MIComparisonDisplay.from_matrices(
        np.ones((2, 3)), np.zeros((2, 3)), names=("seed 0", "seed 1")
    )
    assert display.scores == {"seed 0": 1.0, "seed 1": 0.0}
    assert [ax.get_title() for ax in display.axes_] == [
        "seed 0 model: MIS = 1.0000", "seed 1 model: MIS = 0.0000",
    ]
    assert "seed 0 (MIS 1.0000) vs seed 1 (MIS 0.0000)" in display.caption


def test_mi_comparison_errors():
    with pytest.raises(ValueError, match="two different model names"):
        MIComparisonDisplay(np.ones((2, 3)), np.ones((2, 3)), names=("a", "a"))
    with pytest.raises(ValueError, match="classes"):
        MIComparisonDisplay(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="negative"):
        MIComparisonDisplay(np.ones((2, 3)), -np.ones((2, 3)))


# ------------------------------------------------------------------ overlays
def test_upsample_map_is_bilinear_and_constant_maps_stay_constant():
    np.testing.assert_allclose(upsample_map(np.full((2, 2), 3.0), (8, 8)), np.full((8, 8), 3.0))
    # align_corners=False: a 1×2 map [0, 1] upsampled to width 4 → [0, 0.25, 0.75, 1].
    np.testing.assert_allclose(
        upsample_map(np.array([[0.0, 1.0]]), (1, 4)), [[0.0, 0.25, 0.75, 1.0]]
    )


def test_overlay_arrays_and_boxes():
    image = torch.linspace(0, 1, 64).view(1, 8, 8)
    attribution = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    display = AttributionOverlayDisplay.from_maps(
        image, attribution, boxes=torch.tensor([[1.0, 2.0, 5.0, 4.0]]),
        true_boxes=np.array([[0, 0, 4, 4], [4, 4, 8, 8]]), title="cat",
    )
    np.testing.assert_allclose(np.asarray(display.image_.get_array()), image[0].numpy(), atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(display.overlay_.get_array()), upsample_map(attribution, (8, 8))
    )
    assert display.overlay_.get_alpha() == 0.5
    (box,) = display.box_patches_
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (1.0, 2.0, 4.0, 2.0)
    assert [p.get_xy() for p in display.true_box_patches_] == [(0.0, 0.0), (4.0, 4.0)]
    assert display.ax_.get_title() == "cat"
    # The image spans [0, 8] in both axes so that box coordinates are pixel edges.
    assert display.image_.get_extent() == [0.0, 8.0, 8.0, 0.0]


def test_overlay_rgb_image_is_channels_last():
    image = torch.rand(3, 4, 5)
    display = AttributionOverlayDisplay.from_maps(image, torch.rand(2, 2))
    np.testing.assert_allclose(
        np.asarray(display.image_.get_array()), image.permute(1, 2, 0).numpy(), atol=1e-7
    )
    assert display.overlay_.get_array().shape == (4, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(image=torch.rand(2, 4, 4)), "C = 1 or 3"),
        (dict(image=torch.full((1, 4, 4), 2.0)), r"\[0, 1\]"),
        (dict(attribution=torch.rand(3, 2, 2)), "one map"),
        (dict(boxes=torch.tensor([[4.0, 0.0, 1.0, 2.0]])), "xyxy"),
        (dict(boxes=torch.ones(2, 3)), r"\(n, 4\)"),
    ],
)
def test_overlay_errors(kwargs, match):
    arguments = dict(image=torch.rand(1, 4, 4), attribution=torch.rand(2, 2))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AttributionOverlayDisplay.from_maps(**arguments)


def test_overlay_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        AttributionOverlayDisplay(torch.rand(1, 4, 4), torch.rand(2, 2)).plot(alpha=1.5)


# ------------------------------------------------------------ filters of a class
def test_class_filters_from_net_shows_the_gated_filters_in_gate_order():
    # Filter k's map is (k + 1) · image; class b keeps filters 0 (0.8) and 2 (0.5) at 0.5.
    net = tiny_net(GATE, np.ones_like(GATE))
    image = torch.rand(1, 3, 3)
    display = ClassFiltersDisplay.from_net(net, image, target=1, class_names=CLASSES,
                                           threshold=0.5)
    assert display.filters == [0, 2]
    assert display.gate_values == pytest.approx([0.8, 0.5])
    for panel, factor in zip(display.panels_, [1.0, 3.0]):
        np.testing.assert_allclose(
            np.asarray(panel.overlay_.get_array()), factor * image[0].numpy(), atol=1e-6
        )
    assert [p.ax_.get_title() for p in display.panels_] == [
        "filter 0\nG = 0.80", "filter 2\nG = 0.50",
    ]
    assert display.axes_[0].get_title() == "class bag"


def test_class_filters_top_limits_the_panels():
    net = tiny_net(GATE, np.ones_like(GATE))
    display = ClassFiltersDisplay.from_net(net, torch.rand(1, 2, 2), target=0, top=1)
    assert display.filters == [3]  # class a: filter 3 (1.0) before filter 1 (0.9)


def test_class_filters_errors():
    net = tiny_net(GATE, np.ones_like(GATE))
    with pytest.raises(ValueError, match="no filter"):
        ClassFiltersDisplay.from_net(net, torch.rand(1, 2, 2), target=2, threshold=0.95)
    with pytest.raises(ValueError, match="no gate"):
        ClassFiltersDisplay.from_net(tiny_net(None, GATE), torch.rand(1, 2, 2), target=0)
    with pytest.raises(ValueError, match="out of range"):
        ClassFiltersDisplay.from_net(net, torch.rand(1, 2, 2), target=7)
    with pytest.raises(ValueError, match="2 maps for 3 filter"):
        ClassFiltersDisplay(torch.rand(1, 4, 4), np.zeros((2, 2, 2)), [0, 1, 2])


# ---------------------------------------------------------- image baselines
@pytest.mark.mpl_image_compare(**MPL_COMPARE)
def test_baseline_gate_heatmap():
    gate = np.random.default_rng(0).random((4, 12)) ** 3
    return GateHeatmapDisplay.from_gate(gate, ["a", "b", "c", "d"]).figure_


@pytest.mark.mpl_image_compare(**MPL_COMPARE)
def test_baseline_four_panel_figure():
    rng = np.random.default_rng(1)
    gate = rng.random((3, 10)) ** 4
    display = GateWeightPanelsDisplay(gate, rng.normal(size=(3, 10)), rng.normal(size=(3, 10)))
    return display.plot().figure_


@pytest.mark.mpl_image_compare(**MPL_COMPARE)
def test_baseline_overlay():
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    image = ((xx + yy) / 30).view(1, 16, 16)
    attribution = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    return AttributionOverlayDisplay.from_maps(
        image, attribution, boxes=[[5, 2, 14, 11]], true_boxes=[[4, 3, 13, 12]]
    ).figure_
