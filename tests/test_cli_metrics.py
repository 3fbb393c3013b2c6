"""`csg-interp evaluate`, `filters` and `compare` end to end on a tiny trained digits pair."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from csg_interp.cli import main
from csg_interp.metrics import compare_metrics, mi_score
from csg_interp.metrics.runs import evaluate_run, load_metrics
from csg_interp.training import l1_density, load_run


@pytest.fixture
def pair(tiny_digits_pair, tmp_path):
    """Private copies of the session's runs (the commands write into run directories)."""
    return {name: shutil.copytree(path, tmp_path / name) for name, path in tiny_digits_pair.items()}


def test_evaluate_with_baseline_writes_consistent_metrics(pair, capsys):
    assert main(["evaluate", str(pair["csg"]), "--baseline", str(pair["std"]), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "MIS ratio" in printed and "gap to the STD ceiling closed" in printed
    metrics = json.loads((pair["csg"] / "metrics.json").read_text())
    base = json.loads((pair["std"] / "metrics.json").read_text())
    assert metrics["schema"] == "csg_interp.metrics/1" and metrics["split"] == "test"
    assert metrics["kind"] == "csg" and base["kind"] == "std"
    run = load_run(pair["csg"])
    # Accuracy agrees with the trainer's own test accuracy (an independent code path).
    assert metrics["accuracy"] == pytest.approx(run.manifest["result"]["test_acc"])
    matrix = np.asarray(metrics["mi_matrix"])
    assert matrix.shape == (10, run.net.num_filters)
    assert metrics["mis"] == pytest.approx(mi_score(matrix), abs=1e-7)
    assert metrics["l1_density"] == pytest.approx(float(l1_density(run.net.gate.weight.detach())))
    assert base["l1_density"] is None and base["gate_mi_agreement"] is None
    assert metrics["comparison"] == compare_metrics(metrics, base)
    assert metrics["baseline"]["mis"] == base["mis"]


def test_evaluate_reuses_matching_metrics_only(pair):
    first = evaluate_run(pair["std"], n_jobs=1, progress=False)
    assert load_metrics(pair["std"]) == first
    assert load_metrics(pair["std"], split="val") is None
    assert load_metrics(pair["std"], max_samples=100) is None
    capped = evaluate_run(pair["std"], max_samples=200, n_jobs=1, progress=False)
    assert capped["n_mi"] == 200 and capped["n"] == first["n"]
    assert capped["accuracy"] == first["accuracy"]  # accuracy always uses the whole split


def test_filters_table_matches_gate_and_mi(pair, capsys):
    assert main(["filters", str(pair["csg"]), "--jobs", "1", "--device", "auto"]) == 0
    assert "gate and MI agree on" in capsys.readouterr().out
    run = load_run(pair["csg"])
    matrix = np.asarray(json.loads((pair["csg"] / "metrics.json").read_text())["mi_matrix"])
    with (pair["csg"] / "filters.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == run.net.num_filters
    assert [int(r["gate_class"]) for r in rows] == run.net.gate.weight.argmax(0).tolist()
    assert [int(r["mi_class"]) for r in rows] == matrix.argmax(0).tolist()
    payload = json.loads((pair["csg"] / "filters.json").read_text())
    assert payload["class_names"] == run.classes and len(payload["rows"]) == len(rows)


def test_filters_of_an_std_run_leaves_gate_columns_empty(pair, tmp_path):
    assert main(["filters", str(pair["std"]), "--jobs", "1", "--out", str(tmp_path / "t")]) == 0
    with (tmp_path / "t" / "filters.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["gate_class"] == "" and r["agree"] == "" for r in rows)


def test_compare_prints_means_and_checks(pair, tmp_path, capsys):
    second_std = shutil.copytree(pair["std"], tmp_path / "std_copy")
    out = tmp_path / "comparison.json"
    code = main(["compare", "--csg", str(pair["csg"]), "--std", str(pair["std"]),
                 str(second_std), "--jobs", "1", "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean ± std" in printed and "gap closed" in printed
    result = json.loads(out.read_text())
    std_mis = [r["mis"] for r in result["std"]["runs"]]
    assert std_mis[0] == std_mis[1]  # the same network measured twice gives the same MIS
    assert result["std"]["summary"]["mis"]["std"] == 0.0
    csg_mis = result["csg"]["runs"][0]["mis"]
    check = result["checks"]["every_csg_mis_above_every_std_mis"]
    assert check["passed"] == (csg_mis > std_mis[0])
    density = result["checks"]["l1_density"]
    assert density["passed"] == (density["value"] <= 0.15)
    assert result["passed"] == all(c["passed"] for c in result["checks"].values())
    for name in result["checks"]:
        assert name in printed


def test_compare_rejects_swapped_sides(pair, capsys):
    assert main(["compare", "--csg", str(pair["std"]), "--std", str(pair["std"]), "--jobs", "1"]) == 1
    assert "is a STD run but was passed as --csg" in capsys.readouterr().err


def test_run_directory_without_checkpoint_is_a_clear_error(pair, tmp_path, capsys):
    broken = shutil.copytree(pair["csg"], tmp_path / "no_checkpoint")
    for name in ("last.pt", "best.pt"):
        (broken / name).unlink()
    assert main(["evaluate", str(broken)]) == 1
    assert "last.pt is missing, and so is best.pt" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="last.pt is missing"):
        evaluate_run(broken)
    with pytest.raises(FileNotFoundError, match="run directory .* not found"):
        evaluate_run(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown split"):
        evaluate_run(pair["csg"], split="holdout")


def test_demo_evaluate_stage_prints_the_table(pair, tmp_path, capsys):
    from csg_interp.demo import STAGES, DemoContext, stage_evaluate

    names = [name for name, _ in STAGES]
    assert names.index("evaluate") < names.index("detect")  # pipeline order
    ctx = DemoContext(tmp_path, "digits", None, "cpu", 0, quick=True, runs=dict(pair))
    stage_evaluate(ctx)
    printed = capsys.readouterr().out
    assert "MIS ratio" in printed and "[evaluate] wrote" in printed
    result = ctx.artifacts["evaluate"]
    assert result["n_mi"] == 360  # digits' test split is smaller than the 500 cap
    assert result["comparison"]["mis_ratio"] == pytest.approx(
        result["mis"] / result["baseline"]["mis"], abs=1e-4
    )
