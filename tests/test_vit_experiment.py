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


def test_labelled_variants_run_only_when_named(experiment):
    assert experiment.selected_variants(None) == ["std", "csg"]
    assert experiment.selected_variants({"csg_s1"}) == ["std", "csg"]
    assert experiment.selected_variants({"joint"}) == ["std", "csg", "joint"]
    assert experiment.selected_variants({"joint_s2"}) == ["std", "csg", "joint"]
    assert experiment.selected_variants({"jointly"}) == ["std", "csg"]  # no prefix match
    # the joint variant differs from csg in its schedule only
    joint, csg = experiment.EXTRA_VARIANTS["joint"], experiment.VARIANTS["csg"]
    assert {k: v for k, v in joint.items() if k != "schedule"} == csg
    assert joint["schedule"] == "joint"
    # the extension differs from the joint variant in the owner-separation weight only
    assert experiment.selected_variants({"joint_own01_s0"}) == ["std", "csg", "joint_own01"]
    own = experiment.EXTRA_VARIANTS["joint_own01"]
    assert {k: v for k, v in own.items() if k != "owner_separation"} == joint
    assert own["owner_separation"] == 0.1


def test_a_run_stopped_before_its_first_checkpoint_starts_again(experiment, tmp_path):
    from csg_interp.training import TrainConfig

    # what a run killed during its first epoch leaves: config.json, no last.pt
    results, runs = tmp_path / "res", tmp_path / "runs"
    assert experiment.main(["--protocol", "smoke", "--only", "std_s0", "--results", str(results),
                            "--runs", str(runs)]) == 0  # fmt: skip
    (results / "std_s0.json").unlink()
    for name in ("last.pt", "best.pt", "metrics.jsonl"):
        (runs / "std_s0" / name).unlink(missing_ok=True)
    assert TrainConfig.load(runs / "std_s0" / "config.json").gate is False
    assert experiment.main(["--protocol", "smoke", "--only", "std_s0", "--results", str(results),
                            "--runs", str(runs)]) == 0  # fmt: skip
    result = json.loads((results / "std_s0.json").read_text())
    assert result["resumed"] is False and len(result["history"]) == 1  # trained from epoch 0
