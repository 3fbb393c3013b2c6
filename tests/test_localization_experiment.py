"""experiments/localization_full.py: gated Grad-CAM++ by hand, and the smoke protocol end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csg_interp.models import SmallCNN
from csg_interp.training import CSGNet

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "localization_full.py"
CSG_METHODS = {"csg", "cam", "gradcam", "gradcam++", "gated_gradcam++"}
STD_METHODS = {"cam", "gradcam", "gradcam++"}


@pytest.fixture
def experiment():
    spec = importlib.util.spec_from_file_location("localization_full", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)  # main() sets --threads


def test_gate_filter_weights_by_hand(experiment):
    weights = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    gate = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    gated = experiment.gate_filter_weights(weights, gate, np.array([0, 1]))
    np.testing.assert_array_equal(gated, [[0.0, 2.0, 1.5], [4.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        experiment.gate_filter_weights(weights, gate, np.array([1, 1])), [[1, 0, 0], [4, 0, 0]]
    )


def test_gated_gradcam_plus_plus_with_a_gate_of_ones_is_plain_gradcam_plus_plus(
    experiment, small_net
):
    pytest.importorskip("pytorch_grad_cam")
    from csg_interp.attribution.localization import localization_maps

    x, y = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 1])
    plain = localization_maps(small_net, x, y, "gradcam++")
    ones = torch.ones(3, 5)
    torch.testing.assert_close(experiment.gated_gradcam_plus_plus_maps(small_net, x, y, ones),
                               plain)  # fmt: skip
    zeros = experiment.gated_gradcam_plus_plus_maps(small_net, x, y, torch.zeros(3, 5))
    assert float(zeros.abs().max()) == 0.0  # every weight gated off: an empty map


def test_gated_gradcam_plus_plus_with_one_open_filter_is_that_filters_map(experiment, small_net):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.image import scale_cam_image

    # GAP → linear: dy_c/dA_k = W[c, k]/(h·w) everywhere, so with W[:, 0] = 1 every class gives
    # filter 0 a positive Grad-CAM++ weight w; the gated map is then min-max(ReLU(w·A_0)), and
    # the min-max scaling removes w: the map of filter 0 alone, resized as pytorch-grad-cam does.
    with torch.no_grad():
        small_net.linear_head.weight[:, 0] = 1.0
    gate = torch.zeros(3, 5)
    gate[:, 0] = 1.0
    x, y = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 1])
    maps = experiment.gated_gradcam_plus_plus_maps(small_net, x, y, gate)
    with torch.no_grad():
        filter_map = small_net.forward_features(x)[:, 0].clamp_min(0).numpy()
    expected = scale_cam_image(scale_cam_image(filter_map, (16, 16)))
    torch.testing.assert_close(maps, torch.from_numpy(expected), atol=1e-4, rtol=1e-4)


def test_gated_gradcam_plus_plus_needs_a_gate_of_the_right_shape(experiment, small_net):
    with pytest.raises(ValueError, match="does not match"):
        experiment.gate_matrix(small_net, torch.ones(2, 5))
    std = CSGNet.from_backbone(SmallCNN(num_classes=3, in_channels=1, widths=(4, 4, 5)),
                               num_classes=3, gate=False)  # fmt: skip
    with pytest.raises(ValueError, match="needs a CSG model"):
        experiment.gate_matrix(std)


def _gated_seed(seed: int, variant: str, hits: dict[str, str], accuracy: float) -> dict:
    """What :func:`against_paper` reads of a seed JSON."""
    return {"seed": seed, "gated_variant": variant, "hits": hits,
            "models": {"csg": {"test_accuracy": accuracy}}}  # fmt: skip


def test_against_paper_by_hand(experiment):
    """Per method, the variant's hits minus the paper's, averaged over the common seeds only;
    the STD twin's keys are left out; a one-sided difference has a one-sided interval."""
    ours = [_gated_seed(0, "own01", {"csg/csg": "1100", "csg/cam": "1111", "std/cam": "0000"}, 0.9),
            _gated_seed(1, "own01", {"csg/csg": "1110", "csg/cam": "1111", "std/cam": "0000"}, 0.8)]
    paper = [_gated_seed(1, "csg", {"csg/csg": "0110", "csg/cam": "0000", "std/cam": "0000"}, 0.7),
             _gated_seed(2, "csg", {"csg/csg": "0000", "csg/cam": "0000", "std/cam": "0000"}, 0.6)]
    result = experiment.against_paper(ours, paper, resamples=50)
    assert result["variant"] == "own01" and result["seeds"] == [1]  # seed 1 only: both have it
    assert result["test_accuracy"] == {"variant": [0.8], "paper": [0.7]}
    assert list(result["methods"]) == ["csg/csg", "csg/cam"]  # the order the script wrote
    row = result["methods"]["csg/csg"]  # seed 1: 3 of 4 against 2 of 4
    assert (row["variant"], row["paper"]) == (0.75, 0.5)
    assert row["difference_points"] == pytest.approx(25.0)
    low, high = row["interval_points"]
    assert low <= 25.0 <= high
    assert result["methods"]["csg/cam"]["interval_points"] == [100.0, 100.0]  # 4 of 4 against 0


def test_against_paper_refuses_what_does_not_pair(experiment):
    own = [_gated_seed(0, "own01", {"csg/csg": "10"}, 0.9)]
    with pytest.raises(ValueError, match="other than csg"):
        experiment.against_paper([_gated_seed(0, "csg", {"csg/csg": "10"}, 0.9)], own, 10)
    with pytest.raises(ValueError, match="no seed has results"):
        experiment.against_paper(own, [_gated_seed(1, "csg", {"csg/csg": "10"}, 0.9)], 10)
    with pytest.raises(ValueError, match="different test scenes"):
        experiment.against_paper(own, [_gated_seed(0, "csg", {"csg/csg": "101"}, 0.9)], 10)


def test_paper_results_needs_a_gated_variant(experiment, tmp_path, capsys):
    with pytest.raises(SystemExit):
        experiment.main(["--protocol", "smoke", "--paper-results", str(tmp_path)])
    assert "add --gated own01" in capsys.readouterr().err


def _fashion_mnist_or_skip() -> None:
    from csg_interp.data import MissingDatasetError, find_fashion_mnist

    try:
        find_fashion_mnist()
    except MissingDatasetError as error:
        pytest.skip(f"Fashion-MNIST not installed ({error})")


def _check_seed_result(result: dict, spec: dict, csg_side: tuple[str, ...]) -> None:
    """Values of one seed's JSON: methods, ranges, thresholds on the val grid, hits, interval."""
    assert len(result["git"]["revision"]) == 40
    assert result["data"]["test_scenes"] == spec["test_scenes"]
    assert result["data"]["val_scenes"] == spec["val_scenes"]
    assert result["data"]["train_scenes"] == spec["train_scenes"]
    models = result["models"]
    assert set(models["csg"]["methods"]) == CSG_METHODS
    assert set(models["std"]["methods"]) == STD_METHODS
    assert models["csg"]["config"]["gate"] is True and models["std"]["config"]["gate"] is False
    assert models["csg"]["config"]["dataset"] == "scenes"
    assert models["csg"]["config"]["data_options"] == {"test_size": spec["test_scenes"]}
    grid = np.arange(0.0, 1.0 - 1e-9, spec["sweep_step"])
    for name, model in models.items():
        assert model["config"]["widths"] == spec["widths"]
        assert 0.0 <= model["test_accuracy"] <= 1.0
        assert 0.0 <= model["filters"]["filter_ap"] <= 1.0
        for method, metrics in model["methods"].items():
            assert 0.0 <= metrics["top1_loc"] <= metrics["gt_known_loc"] <= 1.0
            assert np.abs(grid - metrics["threshold"]).min() < 1e-9  # chosen from the sweep
            assert result["thresholds_chosen"][f"{name}/{method}"] == metrics["threshold"]
            hits = result["hits"][f"{name}/{method}"]
            assert len(hits) == spec["test_scenes"] and set(hits) <= {"0", "1"}
            assert hits.count("1") / len(hits) == pytest.approx(metrics["gt_known_loc"])
    comparison = result["comparison"]
    low, high = comparison["interval_points"]
    assert low <= high
    assert comparison["csg_side"]["method"] in csg_side
    assert comparison["other"]["method"] not in csg_side
    gap = comparison["csg_side"]["gt_known_loc"] - comparison["other"]["gt_known_loc"]
    assert comparison["difference_points"] == pytest.approx(100 * gap)
    assert isinstance(comparison["target_met"], bool)
    assert isinstance(result["accuracy_target_met"], bool)


def test_smoke_protocol_scores_every_method_and_resumes(experiment, tmp_path, capsys):
    _fashion_mnist_or_skip()
    pytest.importorskip("pytorch_grad_cam")
    results, runs = tmp_path / "res", tmp_path / "runs"
    args = ["--protocol", "smoke", "--results", str(results), "--runs", str(runs)]
    assert experiment.main(args) == 0
    spec = experiment.PROTOCOLS["smoke"]
    seeds = spec["seeds"]
    assert sorted(p.name for p in results.glob("s*.json")) == [f"s{s}.json" for s in seeds]
    first = {s: json.loads((results / f"s{s}.json").read_text()) for s in seeds}
    for result in first.values():
        _check_seed_result(result, spec, experiment.CSG_SIDE)
        assert not result["models"]["csg"]["resumed"]
    pooled = json.loads((results / "pooled.json").read_text())
    assert pooled["seeds"] == seeds
    low, high = pooled["comparison"]["interval_points"]
    assert low <= high
    for key, mean in pooled["gt_known_loc_mean"].items():
        model, method = key.split("/")
        per_seed = [first[s]["models"][model]["methods"][method]["gt_known_loc"] for s in seeds]
        assert mean == pytest.approx(np.mean(per_seed))
    assert all((runs / f"{v}_s{s}" / "last.pt").is_file() for v in ("csg", "std") for s in seeds)

    capsys.readouterr()
    assert experiment.main(args) == 0  # every seed done: skipped, nothing retrained
    out = capsys.readouterr().out
    assert out.count("[skip]") == len(seeds) and "[run ]" not in out

    (results / f"s{seeds[-1]}.json").unlink()  # a run directory without JSON resumes
    assert experiment.main(args + ["--only", f"s{seeds[-1]}"]) == 0
    again = json.loads((results / f"s{seeds[-1]}.json").read_text())
    assert again["models"]["csg"]["resumed"] and again["models"]["std"]["resumed"]
    assert len(again["models"]["csg"]["history"]) == spec["epochs"]
    assert again["hits"] == first[seeds[-1]]["hits"]  # the same trained models, rescored


def test_smoke_protocol_with_the_extension_reuses_the_std_twin(experiment, tmp_path):
    """``--gated own01`` trains the extension as the gated model and only reloads the STD twin."""
    _fashion_mnist_or_skip()
    pytest.importorskip("pytorch_grad_cam")
    runs, paper, own = tmp_path / "runs", tmp_path / "paper", tmp_path / "own"
    common = ["--protocol", "smoke", "--runs", str(runs), "--only", "s0"]
    assert experiment.main(common + ["--results", str(paper)]) == 0
    extension = common + ["--results", str(own), "--gated", "own01", "--paper-results", str(paper)]
    assert experiment.main(extension) == 0
    spec = experiment.PROTOCOLS["smoke"]
    first = json.loads((paper / "s0.json").read_text())
    result = json.loads((own / "s0.json").read_text())
    _check_seed_result(result, spec, experiment.CSG_SIDE)
    assert first["gated_variant"] == "csg" and result["gated_variant"] == "own01"
    gated = result["models"]["csg"]
    assert gated["variant"] == "own01" and not gated["resumed"]
    assert gated["config"]["schedule"] == "joint"
    assert gated["config"]["owner_separation"] == 0.1
    assert first["models"]["csg"]["config"]["owner_separation"] == 0.0
    assert (runs / "own01_s0" / "last.pt").is_file()
    # The STD twin was trained once, by the first call; the second reloaded and rescored it.
    assert result["models"]["std"]["resumed"] and not first["models"]["std"]["resumed"]
    std_keys = [key for key in first["hits"] if key.startswith("std/")]
    assert {key: result["hits"][key] for key in std_keys} == {
        key: first["hits"][key] for key in std_keys
    }
    pooled = json.loads((own / "pooled.json").read_text())
    assert pooled["gated_variant"] == "own01"
    against = pooled["against_paper"]  # the two gated networks, method by method, on seed 0
    assert against["seeds"] == [0]
    assert against["test_accuracy"] == {"variant": [result["models"]["csg"]["test_accuracy"]],
                                        "paper": [first["models"]["csg"]["test_accuracy"]]}
    assert set(against["methods"]) == {f"csg/{method}" for method in CSG_METHODS}
    for key, row in against["methods"].items():
        ours, theirs = (r["hits"][key].count("1") / spec["test_scenes"] for r in (result, first))
        assert row["difference_points"] == pytest.approx(100 * (ours - theirs))
    with pytest.raises(ValueError, match="different gated variants"):
        experiment.pool_seeds([first, result], 10)
    with pytest.raises(ValueError, match="is not one of"):
        experiment.run_seed("smoke", 0, None, runs, gated="joint")
