"""explain_images / write_explanations on a hand-weighted model, and `csg-interp explain` on the
tiny digits runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csg_interp.attribution.explain import explain_images, read_image_files, write_explanations
from csg_interp.cli import main

from test_attribution import BATCH, hand_net


def test_explain_images_on_the_hand_model():
    # x1: predicted 0 (logits 56, 16); G[0] = [1, 0, 0.5], ā = [30, 13, 13] → scores [30, 0, 6.5];
    # min_gate 0.5 keeps filters 0 and 2 (filter 1's gate is 0). x2: predicted 1, ā = [0, 40, 0],
    # G[1] = [0, 1, 1] → only filter 1 is active.
    net = hand_net()
    result = explain_images(net, BATCH, labels=[0, 0], sources=["a", "b"])
    first, second = result
    assert (first.predicted, second.predicted) == (0, 1)
    assert first.probability == pytest.approx(1.0) and first.label == 0 and first.source == "a"
    np.testing.assert_allclose(first.class_map, [[10, 18], [64, 80]])
    assert [f.filter for f in first.filters] == [0, 2]
    assert [f.gate for f in first.filters] == [1.0, 0.5]
    assert [f.weight for f in first.filters] == [1.0, 2.0]
    assert [f.score for f in first.filters] == [30.0, 6.5]
    assert [f.contribution for f in first.filters] == [30.0, 13.0]
    np.testing.assert_allclose(first.filter_maps, [[[10, 18], [42, 50]], [[0, 0], [22, 30]]])
    assert [f.filter for f in second.filters] == [1]
    np.testing.assert_allclose(second.class_map, np.full((2, 2), 40.0))
    top1 = explain_images(net, BATCH, top_n=1)
    assert [f.filter for f in top1[0].filters] == [0]
    strict = explain_images(net, BATCH, min_gate=0.9)
    assert [f.filter for f in strict[0].filters] == [0]


def test_write_explanations_round_trip(tmp_path):
    net = hand_net()
    explanations = explain_images(net, BATCH, labels=[0, 1], sources=["test[0]", "test[1]"])
    shown = BATCH / 15  # the hand model takes 0..15; the figures want pixels in [0, 1]
    index_path = write_explanations(explanations, shown, tmp_path, ["zero", "one"], {"mode": "cam"})
    index = json.loads(index_path.read_text())
    assert index["version"] == 1 and index["classes"] == ["zero", "one"]
    assert index["info"] == {"mode": "cam"}
    entry = index["images"][0]
    assert entry["predicted_name"] == "zero" and entry["label_name"] == "zero"
    assert [f["filter"] for f in entry["filters"]] == [0, 2]
    assert (tmp_path / entry["png"]).stat().st_size > 0
    with np.load(tmp_path / entry["npz"]) as data:
        np.testing.assert_allclose(data["class_map"], [[10, 18], [64, 80]])
        assert data["class_map_upsampled"].shape == (4, 4)
        np.testing.assert_array_equal(data["filters"], [0, 2])
        np.testing.assert_allclose(data["gate_values"], [1.0, 0.5])
        assert data["filter_maps"].shape == (2, 2, 2) and data["image"].shape == (1, 4, 4)


def test_explain_bad_input(tmp_path):
    net = hand_net()
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        explain_images(net, BATCH, top_n=0)
    with pytest.raises(ValueError, match="1 sources for 2 images"):
        explain_images(net, BATCH, sources=["a"])
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image_files([tmp_path / "missing.png"], 1, (8, 8))
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(FileNotFoundError, match="not an image OpenCV can read"):
        read_image_files([tmp_path / "junk.png"], 1, (8, 8))


def test_read_image_files_converts_and_resizes(tmp_path):
    import cv2

    grey = np.zeros((16, 16), np.uint8)
    grey[:, 8:] = 255
    cv2.imwrite(str(tmp_path / "half.png"), grey)
    x = read_image_files([tmp_path / "half.png"], 1, (8, 8))
    assert x.shape == (1, 1, 8, 8)
    torch.testing.assert_close(x[0, 0, :, :4], torch.zeros(8, 4))
    torch.testing.assert_close(x[0, 0, :, 4:], torch.ones(8, 4))
    assert read_image_files([tmp_path / "half.png"], 3, (8, 8)).shape == (1, 3, 8, 8)


@pytest.mark.slow
def test_cli_explain_csg_and_std_runs(tiny_digits_pair, tmp_path, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "digit.png"), np.full((8, 8), 128, np.uint8))
    csg_out = tmp_path / "csg_explain"
    code = main(["explain", str(tiny_digits_pair["csg"]), "--images", "0", "3",
                 str(tmp_path / "digit.png"), "--out", str(csg_out), "--top-n", "3",
                 "--sanity", "3"])  # fmt: skip
    assert code == 0
    index = json.loads((csg_out / "index.json").read_text())
    sources = [e["source"] for e in index["images"]]
    assert sources == ["test[0]", "test[3]", str(tmp_path / "digit.png")]
    assert index["info"]["gate"] == "learned"
    assert index["images"][2]["label"] is None and index["images"][0]["label"] is not None
    for entry in index["images"]:
        assert len(entry["filters"]) <= 3
        assert all(f["gate"] >= 0.5 for f in entry["filters"])
        assert (csg_out / entry["npz"]).is_file() and (csg_out / entry["png"]).is_file()
    printed = capsys.readouterr().out
    assert "wrote 3 explanations" in printed and "sanity check on 3 images" in printed
    sanity = json.loads((csg_out / "sanity.json").read_text())
    assert sanity["units"][:2] == ["head", "gate"] and sanity["images"] == 3
    assert set(index["info"]["sanity"]["final_spearman"]) == {"CSGAttribution", "LayerGradCam"}
    assert (csg_out / "sanity.md").read_text().startswith("| step |")

    std_out = tmp_path / "std_explain"
    code = main(["explain", str(tiny_digits_pair["std"]), "--num-images", "2", "--fit-images",
                 "100", "--jobs", "1", "--out", str(std_out), "--no-figures"])  # fmt: skip
    assert code == 0
    index = json.loads((std_out / "index.json").read_text())
    assert index["info"]["gate"].startswith("mi (gate_from_mi on 100 validation images)")
    assert len(index["images"]) == 2 and index["images"][0]["png"] is None


def test_cli_explain_errors(tiny_digits_pair, tmp_path, capsys):
    assert main(["explain", str(tmp_path / "nowhere")]) == 1
    assert "run directory" in capsys.readouterr().err
    assert main(["explain", str(tiny_digits_pair["std"]), "--gate", "learned"]) == 1
    assert "STD run (no learned gate)" in capsys.readouterr().err
    assert main(["explain", str(tiny_digits_pair["csg"]), "--images", "100000"]) == 1
    assert "test-set index out of range" in capsys.readouterr().err
