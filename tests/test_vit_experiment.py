"""experiments/vit_fashion_mnist.py end to end at toy size: JSON per run, git revision, resume."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("timm")

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "vit_fashion_mnist.py"


@pytest.fixture
def experiment(monkeypatch):
    spec = importlib.util.spec_from_file_location("vit_fashion_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The same pipeline on digits with a 2×2-patch-grid ViT, so that it runs in seconds.
    monkeypatch.setattr(module, "VIT_OPTIONS", dict(
        module.VIT_OPTIONS, img_size=8, embed_dim=16, depth=1, num_heads=2, drop_path_rate=0.0,
    ))  # fmt: skip
    monkeypatch.setattr(module, "RECIPE", dict(module.RECIPE, dataset="digits", batch_size=32,
                                               augment="none"))  # fmt: skip
    monkeypatch.setattr(module, "PROTOCOLS", {
        "smoke": {"train_subset": None, "epochs": 1, "val_size": 200, "seeds": [0],
                  "max_mi": 200},
    })  # fmt: skip
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)  # main() pins one thread


def test_smoke_protocol_writes_results_and_resumes(experiment, tmp_path, capsys):
    args = ["--protocol", "smoke", "--results", str(tmp_path / "res"),
            "--runs", str(tmp_path / "runs")]  # fmt: skip
    assert experiment.main(args) == 0
    results = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "res").glob("*.json")}
    assert sorted(results) == ["csg_s0", "std_s0"]
    for name, result in results.items():
        assert result["config"]["model_options"]["global_pool"] == "avg"
        assert result["config"]["gate"] is (name == "csg_s0")
        assert len(result["git_revision"]) >= 7 and len(result["history"]) == 1
        assert 0.0 <= result["metrics"]["accuracy"] <= 1.0
        assert len(result["metrics"]["mi_matrix"][0]) == 16  # embed_dim channels
    assert results["std_s0"]["metrics"]["l1_density"] is None
    assert 0.0 < results["csg_s0"]["metrics"]["l1_density"] <= 1.0
    capsys.readouterr()
    assert experiment.main(args) == 0  # everything done: both runs are skipped
    assert capsys.readouterr().out.count("[skip]") == 2
