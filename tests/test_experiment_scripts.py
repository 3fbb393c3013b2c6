"""Smoke tests of the experiment scripts (the long runs themselves never run in CI)."""

from __future__ import annotations

import json
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


def _backward_through_term(trainer_class, tmp_path, images: int, **weight):
    """Build an extension's trainer on digits, back-propagate its term on the first ``images``
    training images; returns the network (with its gradients) and the term's value."""
    import torch

    from csg_interp.training.config import TrainConfig

    config = TrainConfig(dataset="digits", model="smallcnn", device="cpu", seed=0, epochs=1,
                         out=str(tmp_path / "run")).resolved()  # fmt: skip
    trainer = trainer_class(config, progress=False, **weight)
    net = trainer.net
    batch, labels = trainer.bundle.train.tensors(torch.arange(images))
    net.zero_grad(set_to_none=True)
    term = trainer.extra_term(net.features(batch), labels)
    term.backward()
    return net, float(term.detach())


def test_counterfactual_term_trains_features_and_head_but_not_the_gate(tmp_path):
    from counterfactual import CounterfactualTrainer

    net, _ = _backward_through_term(CounterfactualTrainer, tmp_path, 16, cf_weight=1.0)
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


def test_every_extension_variant_is_a_variant_of_the_campaign():
    import full_accuracy

    assert set(full_accuracy.EXTENSIONS) <= set(full_accuracy.VARIANTS)
    for name in ("joint_own003", "joint_own01"):
        assert full_accuracy.VARIANTS[name] == {"schedule": "joint"}
        assert full_accuracy.EXTENSIONS[name][0] == "owner_separation"


def test_owner_separation_on_the_joint_objective_acts_in_every_epoch(tmp_path):
    """The joint schedule has no STD epochs, so the term is recorded (negative) in all of them."""
    _fashion_mnist_or_skip()
    import full_accuracy

    result = full_accuracy.run_one("joint_own003", 0, smoke=True, probes=False, runs_root=tmp_path)
    assert result["config"]["schedule"] == "joint"
    assert result["extension"] == {"module": "owner_separation", "own_weight": 0.03}
    terms = [row["owner_separation"] for row in result["history"]]
    assert len(terms) == 3 and all(t is not None and t < 0 for t in terms)


@pytest.mark.parametrize(
    "page_name, protocol, start, end",
    [
        # ``detection`` is built by experiments/detect_full.py --summary, ``localization_why`` by
        # experiments/localization_why.py --summary, the rest by make_table.
        ("detection.md", "detection",
         "<!-- DETECTION SUMMARY START (python experiments/detect_full.py --summary) -->",
         "<!-- DETECTION SUMMARY END -->"),
        ("metrics.md", "main", "<!-- TABLE START (python experiments/make_table.py) -->",
         "<!-- TABLE END -->"),
        ("metrics.md", "full",
         "<!-- FULL TABLE START (python experiments/make_table.py --protocol full) -->",
         "<!-- FULL TABLE END -->"),
        ("models.md", "vit/full",
         "<!-- VIT TABLE START (python experiments/make_table.py --protocol vit/full) -->",
         "<!-- VIT TABLE END -->"),
        ("localization.md", "localization/full",
         "<!-- LOCALIZATION TABLE START (python experiments/make_table.py --protocol "
         "localization/full) -->", "<!-- LOCALIZATION TABLE END -->"),
        ("localization.md", "localization/full_own01",
         "<!-- LOCALIZATION OWN01 TABLE START (python experiments/make_table.py --protocol "
         "localization/full_own01) -->", "<!-- LOCALIZATION OWN01 TABLE END -->"),
        ("localization.md", "localization_why",
         "<!-- LOCALIZATION WHY TABLE START (python experiments/localization_why.py --summary) -->",
         "<!-- LOCALIZATION WHY TABLE END -->"),
    ],
)  # fmt: skip
def test_docs_tables_are_the_committed_results(page_name, protocol, start, end):
    """The docs pages show exactly what make_table.py (or detect_full.py --summary,
    localization_why.py --summary) builds from the committed JSONs."""
    import detect_full
    import localization_why
    import make_table

    page = (ROOT / "docs" / page_name).read_text()
    shown = page.split(start, 1)[1].split(end, 1)[0].strip()
    builders = {"detection": detect_full.summary, "localization_why": localization_why.summary}
    built = builders.get(protocol, lambda: make_table.build_tables(protocol))()
    assert shown == built.strip()


def _run(variant: str, seed: int, accuracy: float, mis: float) -> dict:
    return {"variant": variant, "seed": seed, "metrics": {"accuracy": accuracy, "mis": mis}}


def test_against_twin_compares_at_the_common_seeds_only():
    """A one-seed ablation meets its twin's run of the same seed, not the twin's 3-seed mean."""
    from make_table import against_twin

    by_variant = {
        "std": [_run("std", 0, 0.90, 0.20), _run("std", 1, 0.92, 0.10), _run("std", 2, 0.94, 0.30)],
        "csg_2of3": [_run("csg_2of3", 0, 0.88, 0.25)],
        "std_ls": [_run("std_ls", 1, 0.91, 0.20)],
        "csg_ls": [_run("csg_ls", 0, 0.80, 0.50), _run("csg_ls", 1, 0.89, 0.19)],
        "csg_r20": [_run("csg_r20", 0, 0.93, 0.22)],  # its twin std_r20 is not trained
    }  # fmt: skip
    rows = {row["variant"]: row for row in against_twin(by_variant)}
    two = rows["csg_2of3"]
    assert (two["twin"], two["seeds"]) == ("std", [0])
    assert two["twin_acc"] == pytest.approx(0.90) and two["twin_mis"] == pytest.approx(0.20)
    assert two["mis_ratio"] == pytest.approx(1.25)
    assert two["delta_acc_points"] == pytest.approx(-2.0)
    assert two["all_above"] is True
    ls = rows["csg_ls"]  # seed 0 has no std_ls run: only seed 1 is compared
    assert (ls["twin"], ls["seeds"]) == ("std_ls", [1])
    assert ls["mis_ratio"] == pytest.approx(0.95) and ls["all_above"] is False
    assert rows["csg_r20"]["twin"] == "std"  # falls back to the plain STD twin


def test_a_resnet20_variant_meets_the_resnet20_twin_and_paper_method():
    """A variant of another architecture is compared with that architecture's plain STD run and
    plain CSG run, never with the ResNet-8 ones (and the plain CSG run of it is no rival)."""
    from make_table import against_paper_method, against_twin

    def run(variant, seed, accuracy, mis, model="resnet8"):
        return dict(_run(variant, seed, accuracy, mis), config={"model": model})

    by_variant = {
        "std": [run("std", 0, 0.92, 0.18)],
        "csg": [run("csg", 0, 0.91, 0.21)],
        "csg_r20": [run("csg_r20", 0, 0.93, 0.23, "resnet20")],
        "joint_own01": [run("joint_own01", 0, 0.925, 0.27)],
        "joint_own01_r20": [run("joint_own01_r20", 0, 0.94, 0.30, "resnet20")],
        "std_r20": [run("std_r20", 0, 0.94, 0.20, "resnet20")],
    }  # fmt: skip
    twins = {row["variant"]: row["twin"] for row in against_twin(by_variant)}
    assert twins == {"csg": "std", "csg_r20": "std_r20", "joint_own01": "std",
                     "joint_own01_r20": "std_r20"}  # fmt: skip
    rows = [line.split(" | ") for line in against_paper_method(by_variant) if line.startswith("| joint")]
    assert [(r[0], r[1]) for r in rows] == [("| joint_own01", "csg"), ("| joint_own01_r20", "csg_r20")]
    assert rows[1][3] == f"{0.30 / 0.23:.3f}" and rows[1][4] == "+1.00"


def test_ablation_plot_draws_one_arrow_per_variant_from_twin_to_variant(tmp_path):
    from plot_ablations import plot

    rows = [
        {"variant": "csg", "seeds": [0, 1], "acc": 0.91, "mis": 0.21, "twin_acc": 0.92,
         "twin_mis": 0.19, "mis_ratio": 0.21 / 0.19},
        {"variant": "joint", "seeds": [0], "acc": 0.925, "mis": 0.214, "twin_acc": 0.926,
         "twin_mis": 0.181, "mis_ratio": 0.214 / 0.181},
    ]  # fmt: skip
    fig = plot(rows, tmp_path / "ablations.png")
    assert (tmp_path / "ablations.png").stat().st_size > 0
    ax = fig.axes[0]
    arrows = [text for text in ax.texts if getattr(text, "arrow_patch", None) is not None]
    assert [(a.xy, a.xyann) for a in arrows] == [((0.91, 0.21), (0.92, 0.19)),
                                                  ((0.925, 0.214), (0.926, 0.181))]  # fmt: skip
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["csg ×1.11 (seeds 0,1)", "joint ×1.18 (seed 0)"]


def test_ablation_plot_gives_up_to_twenty_variants_a_colour_each(tmp_path):
    from matplotlib.colors import to_hex
    from plot_ablations import plot

    rows = [{"variant": f"v{i}", "seeds": [0], "acc": 0.9, "mis": 0.2 + i / 1000,
             "twin_acc": 0.92, "twin_mis": 0.18, "mis_ratio": 1.1} for i in range(17)]  # fmt: skip
    handles = plot(rows, tmp_path / "many.png").axes[0].get_legend_handles_labels()[0]
    assert len({to_hex(h.get_color()) for h in handles}) == 17


def test_owner_separation_term_trains_features_but_not_the_gate(tmp_path):
    from owner_separation import OwnerSeparationTrainer

    net, term = _backward_through_term(OwnerSeparationTrainer, tmp_path, 64, own_weight=1.0)
    assert term < 0
    assert net.gate.weight.grad is None
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.features.parameters())


def _localization_seed(seed: int, gt_known: dict[str, float], accuracy: dict[str, float]) -> dict:
    """A minimal seed JSON of experiments/localization_full.py: what the table reads."""
    models: dict = {"csg": {"methods": {}}, "std": {"methods": {}}}
    for key, value in gt_known.items():
        model, method = key.split("/")
        models[model]["methods"][method] = {
            "threshold": 0.3, "gt_known_loc": value, "top1_loc": value / 2,
            "max_box_acc_v2": value, "mask_iou": 0.25, "energy_pointing": 0.5,
        }
    for model in models:
        models[model]["test_accuracy"] = accuracy[model]
    models["csg"]["gate_density"] = 0.1
    return {
        "seed": seed, "models": models, "hits": dict.fromkeys(gt_known, ""),
        "filter_ap": {"csg": 0.3, "std": 0.05},
        "comparison": {"csg_side": {"method": "csg/csg"}, "other": {"method": "std/gradcam++"},
                       "difference_points": 2.0, "interval_points": [-1.0, 5.0]},
    }  # fmt: skip


def test_localization_tables_by_hand(tmp_path):
    """Per-seed cells in %, means over the seeds, the comparison's interval, seeds in order."""
    from make_table import build_tables, localization_tables

    folder = tmp_path / "localization" / "full"
    folder.mkdir(parents=True)
    accuracy = {"csg": 0.91, "std": 0.93}
    for seed, value in ((0, 0.60), (1, 0.70)):  # written as s0, s1: read in seed order
        gt = {"csg/csg": value, "std/gradcam++": value - 0.02}
        (folder / f"s{seed}.json").write_text(json.dumps(_localization_seed(seed, gt, accuracy)))
    text = localization_tables("localization/full", results_root=tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| 0 | 0.9100 / 0.9300 | 0.100 | 60.0 | 58.0 | ")
    assert "`csg/csg` − `std/gradcam++`: +2.0 (-1.0 … +5.0)" in rows[1]
    assert rows[2].startswith("| 1 | 0.9100 / 0.9300 | 0.100 | 70.0 | 68.0 | ")
    # Means over both seeds: GT-known (60 + 70) / 2, Top-1 half of it, mask IoU as a fraction.
    assert "| `csg/csg` | 0.30 | 65.0 | 32.5 | 65.0 | 0.250 | 0.500 |" in rows
    assert "| `std/gradcam++` | 0.30 | 63.0 | 31.5 | 63.0 | 0.250 | 0.500 |" in rows
    assert "Pooled" not in text  # no pooled.json yet
    pooled = {"seeds": [0, 1], "comparison": _localization_seed(0, {}, accuracy)["comparison"]}
    (folder / "pooled.json").write_text(json.dumps(pooled))
    assert localization_tables("localization/full", results_root=tmp_path).rstrip().endswith(
        "Pooled over seeds 0,1 (per image, the hits averaged over the seeds): `csg/csg` − "
        "`std/gradcam++` +2.0 (-1.0 … +5.0) points GT-known Loc."
    )
    with pytest.raises(SystemExit, match="no seed JSON"):
        build_tables("localization/none")


def test_localization_tables_name_a_gated_variant_and_refuse_a_mix(tmp_path):
    """The extension's folder says which gated model it holds; two variants in one folder fail."""
    from make_table import localization_tables

    folder = tmp_path / "localization" / "full_own01"
    folder.mkdir(parents=True)
    accuracy = {"csg": 0.91, "std": 0.93}
    seed = _localization_seed(0, {"csg/csg": 0.6, "std/gradcam++": 0.58}, accuracy)
    (folder / "s0.json").write_text(json.dumps({**seed, "gated_variant": "own01"}))
    text = localization_tables("localization/full_own01", results_root=tmp_path)
    assert text.startswith(
        "### GT-known Loc per seed (localization/full_own01, gated model `own01`, %)\n"
    )
    (folder / "s1.json").write_text(json.dumps({**seed, "seed": 1, "gated_variant": "csg"}))
    with pytest.raises(SystemExit, match="mixes gated variants"):
        localization_tables("localization/full_own01", results_root=tmp_path)


def test_localization_tables_show_the_variant_against_the_papers_network(tmp_path):
    """``against_paper`` of pooled.json becomes a table: both networks in % (2 decimals), the
    difference with its interval, the scene accuracies' means and their difference in points."""
    from make_table import localization_tables

    folder = tmp_path / "localization" / "full_own01"
    folder.mkdir(parents=True)
    accuracy = {"csg": 0.91, "std": 0.93}
    seed = _localization_seed(0, {"csg/csg": 0.6, "std/gradcam++": 0.58}, accuracy)
    (folder / "s0.json").write_text(json.dumps({**seed, "gated_variant": "own01"}))
    against = {
        "variant": "own01", "seeds": [0, 2],
        "test_accuracy": {"variant": [0.91, 0.93], "paper": [0.89, 0.90]},
        "methods": {"csg/csg": {"variant": 0.755, "paper": 0.778, "difference_points": -2.3,
                                "interval_points": [-4.26, -0.4]}},
    }  # fmt: skip
    pooled = {"seeds": [0], "comparison": seed["comparison"], "against_paper": against}
    (folder / "pooled.json").write_text(json.dumps(pooled))
    text = localization_tables("localization/full_own01", results_root=tmp_path)
    assert text.rstrip().endswith(
        "### The `own01` network against the paper's CSG network (localization/full_own01, "
        "seeds 0,2)\n\n"
        "| method | `own01` | paper's `csg` | `own01` − `csg` (95 % CI) |\n"
        "|---|---|---|---|\n"
        "| scene accuracy | 0.9200 | 0.8950 | +2.5 points |\n"
        "| `csg/csg` | 75.50 | 77.80 | -2.30 (-4.26 … -0.40) |"
    )


def _detect_metrics(gated: dict[tuple[float, str], float], std: dict[tuple[float, str], float]):
    """A minimal ``metrics.json`` of ``detect_run``: what experiments/detect_full.py reads."""
    rows = [{"model": "gated", "eps": eps, "score": score, "auc": auc, "tpr_at_fpr": 0.5}
            for (eps, score), auc in gated.items()]  # fmt: skip
    rows += [{"model": "twin", "eps": eps, "score": score, "auc": auc, "tpr_at_fpr": 0.5}
             for (eps, score), auc in std.items()]  # fmt: skip
    return {"models": {"gated": {"has_gate": True}, "twin": {"has_gate": False}}, "rows": rows}


def _write_detection(root, run, seed, attack, fit, gated, std):
    import detect_full

    folder = detect_full.folder_of(run, seed, attack, fit, root)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(_detect_metrics(gated, std)))


def test_detection_summary_means_over_seeds_by_hand(tmp_path):
    import detect_full

    # The paper's method at seeds 0 and 1, the extension at seed 0; the STD twin of seed 0 is
    # scored in both seed-0 folders with the same AUC.
    for run, seed, gate_auc, logistic_auc in [("csg", 0, 0.6, 0.9), ("csg", 1, 0.8, 0.95),
                                              ("joint_own01", 0, 0.7, 0.97)]:  # fmt: skip
        std = {(0.03, "mi-gate"): 0.5 + 0.1 * seed, (0.03, "mi-gate-logistic"): 0.99}
        gated = {(0.03, "gate"): gate_auc, (0.03, "gate-logistic"): logistic_auc}
        _write_detection(tmp_path, run, seed, "pgd", "pgd", gated, std)
        _write_detection(tmp_path, run, seed, "pgd", "fgsm", gated | {(0.03, "gate-logistic"): 0.5},
                         std)  # fmt: skip
    lines = {tuple(c.strip() for c in line.split("|")[1:4]): line.split("|")[4:-1]
             for line in detect_full.summary(tmp_path).splitlines()[2:]}  # fmt: skip
    gate = lines[("CSG (paper's method)", "0,1", "gate")]
    assert gate[0].strip() == "0.700 ± 0.141"  # mean and sample std of 0.6 and 0.8
    assert gate[4].strip() == "="  # an unsupervised score does not depend on the fitting attack
    logistic = lines[("CSG (paper's method)", "0,1", "gate-logistic")]
    assert logistic[0].strip() == "0.925 ± 0.035" and logistic[4].strip() == "0.500 ± 0.000"
    assert lines[("CSG + owner separation (joint)", "0", "gate")][0].strip() == "0.700"
    assert lines[("STD twin", "0,1", "mi-gate")][0].strip() == "0.550 ± 0.071"
    assert ("CSG + owner separation (joint)", "0", "max-softmax") not in lines  # no value, no row


def test_detection_summary_refuses_an_std_twin_scored_twice_differently(tmp_path):
    import detect_full

    gated = {(0.03, "gate"): 0.6}
    _write_detection(tmp_path, "csg", 0, "pgd", "pgd", gated, {(0.03, "mi-gate"): 0.7})
    _write_detection(tmp_path, "joint_own01", 0, "pgd", "pgd", gated, {(0.03, "mi-gate"): 0.71})
    with pytest.raises(ValueError, match="not reproducible"):
        detect_full.summary(tmp_path)


def test_localization_why_docstring_examples():
    """The diagnosis measures' examples (participation ratio, top share, energy split, box
    diagnosis, miss kinds) hold."""
    import doctest

    import localization_why

    result = doctest.testmod(localization_why, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


def test_localization_why_records_gradcam_plus_plus_weights_of_a_linear_head():
    """On GAP → linear the gradient is the constant g = W[c, k] / (h·w), so Grad-CAM++'s weight
    of filter k is h·w·g³ / (2g² + Σ A_k·g³ + ε) where W[c, k] > 0 and 0 elsewhere (about
    relu(W) / (2 + W·mean(A_k))), and the recorded means are the gated layer's spatial means."""
    import numpy as np
    import torch
    from localization_why import gradcam_plus_plus_with_weights
    from torch import nn

    from csg_interp.training import CSGNet
    from csg_interp.training.network import GAPLinearHead

    conv = nn.Conv2d(1, 3, kernel_size=1, bias=False)
    linear = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0, 0.5]).view(3, 1, 1, 1))
        linear.weight.copy_(torch.tensor([[1.0, -1.0, 2.0], [0.5, 3.0, -2.0]]))
    net = CSGNet(nn.Sequential(conv, nn.ReLU()), GAPLinearHead(linear), 2, 3, None, 1).eval()
    images = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 1, 0])
    maps, weights, means = gradcam_plus_plus_with_weights(net, images, targets, batch_size=3)
    assert maps.shape == (4, 6, 6)
    pixel_means = images.mean(dim=(1, 2, 3)).double().numpy()
    expected_means = pixel_means[:, None] * np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(means, expected_means, rtol=1e-5)
    w = linear.weight.detach().double().numpy()[targets.numpy()]
    g, hw, eps = w / 36.0, 36.0, 1e-6  # the constant gradient; eps: pytorch-grad-cam's
    expected = np.where(w > 0, hw * g**3 / (2 * g**2 + hw * expected_means * g**3 + eps), 0.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-4)


def test_localization_why_summary_means_over_seeds_by_hand(tmp_path):
    """The table's cells are the means over the seed JSONs, in % where the header says so."""
    from localization_why import NETWORKS, summary

    def method(value: float) -> dict:
        return {
            "gt_known": value, "hits_match": True, "area_ratio_median": value,
            "recall_mean": value, "precision_mean": value,
            "misses": {"too_small": value / 2, "too_large": 0.0, "other": value / 4},
            "energy": {"box": value, "distractors": 0.1, "background": 0.9 - value},
            "filters_effective": 10 * value, "filters_effective_hits": 10.0,
            "filters_effective_misses": 2.0, "top_filter_share": value,
        }  # fmt: skip

    for seed, value in ((0, 0.4), (1, 0.6)):
        networks = {name: {"methods": {"cam": method(value), "gradcam++": method(value)}}
                    for name, *_ in NETWORKS}  # fmt: skip
        (tmp_path / f"s{seed}.json").write_text(json.dumps({"seed": seed, "networks": networks}))
    text = summary(tmp_path)
    assert "seeds 0,1" in text
    assert ("| own01 / cam | 50.0 | 0.50 | 0.50 | 0.50 | 25.0 / 0.0 / 12.5 | 50.0 / 10.0 / 40.0 "
            "| 5.0 (10.0 / 2.0) | 0.50 |") in text.splitlines()
    assert text.endswith("seed: yes.")
    with pytest.raises(SystemExit, match="no results"):
        summary(tmp_path / "empty")
