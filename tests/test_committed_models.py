"""Every committed checkpoint behind a documented headline loads with the current code and gives
the test accuracy its run recorded (so a refactor cannot silently break them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csg_interp.training import load_run
from csg_interp.training.trainer import evaluate_accuracy

ROOT = Path(__file__).resolve().parents[1]
RUNS = sorted(p.parent for p in (ROOT / "experiments" / "models").glob("*/*/last.pt"))


def test_there_are_committed_models():
    assert RUNS, "experiments/models/ holds no committed run"


@pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_checkpoint_reproduces_its_recorded_test_accuracy(run_dir):
    from csg_interp.data import MissingDatasetError

    run = load_run(run_dir)
    recorded = json.loads((run_dir / "manifest.json").read_text())["result"]["test_acc"]
    # Scenes: every split has its own generation seed, so the test scenes do not depend on how
    # many training scenes are built; 64 instead of 50 000 saves the generation time.
    overrides = {"train_subset": 64} if run.config.dataset == "scenes" else {}
    try:
        bundle = run.load_data(**overrides)
    except (MissingDatasetError, FileNotFoundError) as error:
        pytest.skip(f"the run's data set is not installed ({error})")
    assert evaluate_accuracy(run.net, bundle.test)["acc"] == pytest.approx(recorded, abs=1e-9)
