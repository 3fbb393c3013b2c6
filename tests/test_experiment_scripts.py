"""Smoke tests of the experiment scripts (the long runs themselves never run in CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))


def _fashion_mnist_or_skip():
    from csg_interp.data import MissingDatasetError, find_fashion_mnist

    try:
        find_fashion_mnist()
    except MissingDatasetError as error:
        pytest.skip(f"Fashion-MNIST not installed ({error})")


def test_full_accuracy_smoke_run_records_curve_metrics_and_revision(tmp_path):
    _fashion_mnist_or_skip()
    import full_accuracy

    result = full_accuracy.run_one("csg", 0, smoke=True, runs_root=tmp_path)
    assert [row["epoch"] for row in result["curve"]] == [0, 1, 2]
    assert [row["kind"] for row in result["curve"]] == [r["kind"] for r in result["history"]]
    assert all(0.0 <= row["test_acc"] <= 1.0 and row["val_mis_2000"] >= 0 for row in result["curve"])
    assert result["test"]["n"] == 10000 and result["test"]["n_mi"] == 500
    assert result["curve"][-1]["test_acc"] == pytest.approx(result["test"]["accuracy"])
    assert 0.0 < result["test"]["l1_density"] <= 1.0
    assert set(result["git"]) == {"revision", "library_dirty"}
    assert result["config"]["schema"] == 2 and result["config"]["gate"] is True
    assert (tmp_path / "smoke" / "csg_s0" / "last.pt").is_file()


def test_full_accuracy_rejects_unknown_variants(capsys):
    import full_accuracy

    with pytest.raises(SystemExit):
        full_accuracy.main(["--variants", "nope", "--smoke"])
    assert "unknown variant(s) nope" in capsys.readouterr().err
