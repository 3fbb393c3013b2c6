"""The train workflow without training: how it resolves a config, its result, its imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from csg_interp.errors import InvalidParameterError
from csg_interp.training import TrainConfig
from csg_interp.workflows import TrainResult
from csg_interp.workflows.train import train_config


def _recorded_run(run_dir: Path) -> TrainConfig:
    config = TrainConfig(dataset="digits", model="smallcnn", out=str(run_dir)).resolved()
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    return config


def test_a_value_the_config_rejects_is_a_usage_error():
    with pytest.raises(InvalidParameterError, match="epochs must be a positive integer, got 0"):
        train_config(TrainConfig(out="x", epochs=0))


def test_resume_uses_the_recorded_config_and_only_the_mutable_changes(tmp_path):
    recorded = _recorded_run(tmp_path / "run")
    given = TrainConfig(out=str(tmp_path / "run"), lr=9.0)  # ignored: config.json decides
    config = train_config(given, resume=True, changes={"device": "cpu"})
    assert (config.model, config.lr, config.device) == (recorded.model, recorded.lr, "cpu")
    with pytest.raises(InvalidParameterError, match="`lr` cannot be given"):
        train_config(given, resume=True, changes={"lr": 0.5})


def test_resume_without_a_recorded_run_starts_the_given_one(tmp_path):
    config = train_config(TrainConfig(out=str(tmp_path / "new"), epochs=3), resume=True)
    assert config.epochs == 3 and config.is_resolved


def test_the_result_reads_the_manifest_and_never_rewrites_it(tmp_path):
    manifest = {"epochs_done": 2, "config": {"gate": True, "model": "smallcnn",
                                             "dataset": "digits"},
                "result": {"test_acc": 0.91234, "gate_density": 0.1}}  # fmt: skip
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    result = TrainResult.load(tmp_path)
    assert result.summary() == (
        "CSG smallcnn on digits: 2 epochs, test accuracy 0.9123, gate L1-density 0.100; "
        f"run directory {tmp_path}"
    )
    before = path.read_text()
    assert result.save(tmp_path) == path and path.read_text() == before
    manifest["config"]["gate"], manifest["result"] = False, None
    path.write_text(json.dumps(manifest))
    assert TrainResult.load(tmp_path).summary().startswith("STD smallcnn on digits: 2 epochs, "
                                                           "test accuracy nan; run directory")


def test_training_does_not_import_the_analysis_workflows():
    code = ("import sys, csg_interp.workflows.train; "
            "print(sorted(m for m in ('matplotlib', 'captum', 'cv2') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
