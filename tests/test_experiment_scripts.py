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


def test_counterfactual_loss_is_minus_log_one_minus_p_of_the_masking_class():
    import torch
    from counterfactual import counterfactual_gate_loss

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    wrong = torch.tensor([0, 2])
    p = torch.softmax(logits, dim=1)
    expected = -(torch.log(1 - p[0, 0]) + torch.log(1 - p[1, 2])) / 2
    assert float(counterfactual_gate_loss(logits, wrong)) == pytest.approx(float(expected), rel=1e-6)


def test_wrong_classes_are_never_the_label_and_cover_every_other_class():
    import torch
    from counterfactual import wrong_classes

    labels = torch.arange(4).repeat(500)
    wrong = wrong_classes(labels, 4, torch.Generator().manual_seed(0))
    assert bool((wrong != labels).all())
    for label in range(4):
        assert set(wrong[labels == label].tolist()) == set(range(4)) - {label}


def test_counterfactual_term_trains_features_and_head_but_not_the_gate(tmp_path):
    import torch
    from counterfactual import CounterfactualTrainer

    from csg_interp.training.config import TrainConfig

    config = TrainConfig(dataset="digits", model="smallcnn", device="cpu", seed=0, epochs=1,
                         out=str(tmp_path / "cf")).resolved()  # fmt: skip
    trainer = CounterfactualTrainer(config, cf_weight=1.0, progress=False)
    net = trainer.net
    images, labels = trainer.bundle.train.tensors(torch.arange(16))
    activations = net.features(images)
    net.zero_grad(set_to_none=True)
    trainer.extra_term(activations, labels).backward()
    assert net.gate.weight.grad is None
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.head.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.features.parameters())


def test_full_accuracy_extension_variant_records_its_term(tmp_path):
    _fashion_mnist_or_skip()
    import full_accuracy

    result = full_accuracy.run_one("csg_cf", 0, smoke=True, probes=False, runs_root=tmp_path)
    assert result["extension"] == {"module": "counterfactual", "cf_weight": 1.0}
    terms = [row["counterfactual"] for row in result["history"]]
    assert [t is not None for t in terms] == [row["kind"] == "csg" for row in result["history"]]
    assert all(t > 0 for t in terms if t is not None)


@pytest.mark.parametrize(
    "page_name, protocol, start, end",
    [
        ("metrics.md", "main", "<!-- TABLE START (python experiments/make_table.py) -->",
         "<!-- TABLE END -->"),
        ("metrics.md", "full",
         "<!-- FULL TABLE START (python experiments/make_table.py --protocol full) -->",
         "<!-- FULL TABLE END -->"),
        ("models.md", "vit/full",
         "<!-- VIT TABLE START (python experiments/make_table.py --protocol vit/full) -->",
         "<!-- VIT TABLE END -->"),
    ],
)  # fmt: skip
def test_docs_tables_are_the_committed_results(page_name, protocol, start, end):
    """The docs pages show exactly what make_table.py builds from the committed JSONs."""
    import make_table

    page = (ROOT / "docs" / page_name).read_text()
    shown = page.split(start, 1)[1].split(end, 1)[0].strip()
    assert shown == make_table.build_tables(protocol).strip()
