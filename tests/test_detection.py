"""Detector scores, ROC metrics and the paired protocol, on hand-built inputs and a tiny model."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from csg_interp.applications.detection import (
    GateConsistencyScore,
    MahalanobisScore,
    MaxSoftmaxScore,
    ModelOutputs,
    detection_metrics,
    gate_outside_mass,
    model_outputs,
    tpr_at_fpr,
)
from csg_interp.applications.evaluation import evaluate_detection
from csg_interp.applications.plots import plot_roc_curves
from csg_interp.training import CSGNet, ClassSpecificGate, GAPLinearHead

matplotlib.use("Agg")

GATE = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
POOLED = torch.tensor([[2.0, 1.0, 1.0, 0.0], [0.0, 0.0, 3.0, 1.0]])


# ---------------------------------------------------------------- gate consistency
def test_outside_mass_on_hand_built_activations_and_gate():
    torch.testing.assert_close(gate_outside_mass(POOLED, GATE, torch.tensor([0, 1])),
                               torch.tensor([0.25, 0.0]))
    torch.testing.assert_close(gate_outside_mass(POOLED, GATE, torch.tensor([1, 0])),
                               torch.tensor([0.75, 1.0]))


def test_outside_mass_with_fractional_gate():
    gate = torch.tensor([[0.5, 1.0]])
    # (1·0.5 + 3·0) / 4
    torch.testing.assert_close(gate_outside_mass(torch.tensor([[1.0, 3.0]]), gate, torch.tensor([0])),
                               torch.tensor([0.125]))


def test_outside_mass_of_silent_sample_is_zero():
    assert gate_outside_mass(torch.zeros(1, 4), GATE, torch.tensor([0])).item() == 0.0


def test_outside_mass_refuses_negative_activations():
    with pytest.raises(ValueError, match="non-negative"):
        gate_outside_mass(torch.tensor([[1.0, -0.5, 0.0, 0.0]]), GATE, torch.tensor([0]))


def test_outside_mass_refuses_bad_gate_and_shapes():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gate_outside_mass(POOLED, GATE * 2, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="K = 4 filters"):
        gate_outside_mass(POOLED, GATE[:, :3], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        gate_outside_mass(POOLED, GATE, torch.tensor([0, 2]))


def test_gate_score_uses_the_predicted_class():
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # predicted 1, 0
    scores = GateConsistencyScore(GATE).score(ModelOutputs(POOLED, logits))
    np.testing.assert_allclose(scores, [0.75, 1.0])


def test_gate_score_batch_equals_loop():
    torch.manual_seed(0)
    pooled, logits = torch.rand(9, 4), torch.randn(9, 2)
    gate = torch.rand(2, 4)
    score = GateConsistencyScore(gate)
    batch = score.score(ModelOutputs(pooled, logits))
    loop = [score.score(ModelOutputs(pooled[i : i + 1], logits[i : i + 1]))[0] for i in range(9)]
    np.testing.assert_allclose(batch, loop, rtol=1e-6)


def _tiny_net(gate: bool) -> CSGNet:
    features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    head = GAPLinearHead(nn.Linear(4, 2))
    return CSGNet(features, head, 2, 4, ClassSpecificGate(2, 4) if gate else None, in_channels=1)


def _bright_dark_net() -> CSGNet:
    """Filters 0, 1 see brightness x, filters 2, 3 see 1 − x; class 0 = bright, class 1 = dark."""
    net = _tiny_net(gate=True)
    conv, linear = net.features[0], net.head.linear
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:2, 0, 1, 1] = 1.0
        conv.weight[2:, 0, 1, 1] = -1.0
        conv.bias.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]))
        linear.weight.copy_(torch.tensor([[1.0, 1.0, -1.0, -1.0], [-1.0, -1.0, 1.0, 1.0]]))
        linear.bias.zero_()
        net.gate.weight.copy_(GATE)
    return net.eval()


def test_gate_score_from_std_model_points_to_mi_gate():
    with pytest.raises(ValueError, match="no gate.*gate_from_mi"):
        GateConsistencyScore.from_net(_tiny_net(gate=False))


def test_gate_score_from_csg_model_takes_its_gate():
    net = _tiny_net(gate=True)
    with torch.no_grad():
        net.gate.weight.copy_(GATE)
    torch.testing.assert_close(GateConsistencyScore.from_net(net).gate, GATE)


def test_gate_score_refuses_gate_outside_unit_interval():
    with pytest.raises(ValueError, match="project it first"):
        GateConsistencyScore(torch.tensor([[1.5, 0.0]]))


# ---------------------------------------------------------------- baselines
def test_max_softmax_hand_values():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    scores = MaxSoftmaxScore().score(ModelOutputs(torch.zeros(2, 1), logits))
    np.testing.assert_allclose(scores, [0.5, 0.25], rtol=1e-6)


def test_mahalanobis_is_zero_at_a_class_mean_and_grows_away():
    torch.manual_seed(0)
    labels = torch.arange(3).repeat_interleave(40)
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    pooled = centres[labels] + 0.3 * torch.randn(120, 2)
    fit = ModelOutputs(pooled, torch.zeros(120, 3))
    detector = MahalanobisScore().fit(fit, labels)
    means = detector.means_.float()
    at_means = detector.score(ModelOutputs(means, torch.zeros(3, 3)))
    np.testing.assert_allclose(at_means, 0.0, atol=1e-9)
    near, far = detector.score(ModelOutputs(torch.tensor([[0.3, 0.3], [2.5, 2.5]]), torch.zeros(2, 3)))
    assert far > near


def test_mahalanobis_needs_fit_and_every_class():
    outputs = ModelOutputs(torch.rand(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="not fitted"):
        MahalanobisScore().score(outputs)
    with pytest.raises(ValueError, match=r"classes \[2\] have none"):
        MahalanobisScore().fit(outputs, torch.tensor([0, 1, 0, 1]))


# ---------------------------------------------------------------- ROC metrics
def test_perfect_detector_has_auc_one_and_full_tpr():
    metrics = detection_metrics(np.array([0.1, 0.2, 0.3]), np.array([0.7, 0.8]))
    assert metrics["auc"] == 1.0 and metrics["tpr_at_fpr"] == 1.0
    assert (metrics["n_clean"], metrics["n_adversarial"]) == (3, 2)


def test_inverted_detector_has_auc_zero():
    assert detection_metrics(np.array([0.9, 0.8]), np.array([0.1, 0.2]))["auc"] == 0.0


def test_random_detector_has_auc_one_half():
    assert detection_metrics(np.full(50, 0.3), np.full(70, 0.3))["auc"] == 0.5  # ties everywhere
    rng = np.random.default_rng(0)
    auc = detection_metrics(rng.random(4000), rng.random(4000))["auc"]
    assert abs(auc - 0.5) < 0.02


def test_tpr_at_five_percent_fpr_hand_example():
    clean = np.arange(20) / 20  # 0.00 .. 0.95; flagging 0.95 is 1/20 = 5 % FPR
    adversarial = np.array([0.5, 0.96, 0.97, 2.0])
    assert detection_metrics(clean, adversarial)["tpr_at_fpr"] == 0.75
    y = np.r_[np.zeros(20), np.ones(4)]
    assert tpr_at_fpr(y, np.r_[clean, adversarial], max_fpr=0.0) == 0.75
    assert tpr_at_fpr(y, np.r_[clean, adversarial], max_fpr=0.55) == 1.0


def test_detection_metrics_refuse_empty_side():
    with pytest.raises(ValueError, match="did any attack succeed"):
        detection_metrics(np.array([0.1]), np.array([]))


# ---------------------------------------------------------------- model outputs
def test_model_outputs_match_the_network_and_batching():
    torch.manual_seed(0)
    net = _tiny_net(gate=True).eval()
    x = torch.rand(10, 1, 6, 6)
    outputs = model_outputs(net, x, batch_size=3)
    torch.testing.assert_close(outputs.logits, net(x))
    torch.testing.assert_close(outputs.pooled, net.features(x).mean(dim=(2, 3)))
    assert bool((outputs.pooled >= 0).all())


# ---------------------------------------------------------------- protocol + plot
def test_evaluate_detection_pairs_successful_attacks():
    torch.manual_seed(0)
    net = _bright_dark_net()
    images = torch.rand(30, 1, 6, 6)
    labels = net(images).argmax(dim=1)  # every clean image is "correct"
    scores = [GateConsistencyScore.from_net(net), MaxSoftmaxScore()]
    evaluation = evaluate_detection(net, scores, images, labels, [0.0, 0.5], model_name="tiny")
    assert len(evaluation.rows) == 4
    assert evaluation.metric(0.0, "gate") is None  # ε = 0: no successful attack
    zero, large = evaluation.attacks
    assert zero["n_success"] == 0 and zero["n_correct"] == 30
    assert large["n_success"] > 0
    row = next(r for r in evaluation.rows if r["eps"] == 0.5 and r["score"] == "max-softmax")
    assert row["n_clean"] == row["n_adversarial"] == large["n_success"]
    y_true, y_score = evaluation.curves[0.5]["max-softmax"]
    assert row["auc"] == pytest.approx(roc_auc_score(y_true, y_score))


def test_evaluate_detection_refuses_duplicate_names_and_bad_eps():
    net = _tiny_net(gate=True).eval()
    x, y = torch.rand(2, 1, 6, 6), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="unique"):
        evaluate_detection(net, [MaxSoftmaxScore(), MaxSoftmaxScore()], x, y, [0.1])
    with pytest.raises(ValueError, match="pixel units"):
        evaluate_detection(net, [MaxSoftmaxScore()], x, y, [1.2])


def test_plot_roc_curves_draws_one_line_per_score():
    y = np.array([0, 0, 1, 1])
    displays = plot_roc_curves(
        {"perfect": (y, np.array([0.1, 0.2, 0.8, 0.9])), "random": (y, np.full(4, 0.5))},
        title="eps 0.1",
    )
    assert [d.roc_auc for d in displays] == [1.0, 0.5]
    ax = displays[0].ax_
    assert ax is displays[1].ax_ and ax.get_title() == "eps 0.1"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("perfect") for label in labels)
    with pytest.raises(ValueError, match="no curves"):
        plot_roc_curves({})


def test_gate_score_end_to_end_on_hand_weighted_net():
    net = _bright_dark_net()
    images = torch.stack([torch.full((1, 6, 6), 0.8), torch.full((1, 6, 6), 0.3)])
    outputs = model_outputs(net, images)
    torch.testing.assert_close(outputs.pooled, torch.tensor([[0.8, 0.8, 0.2, 0.2], [0.3, 0.3, 0.7, 0.7]]))
    assert outputs.predicted.tolist() == [0, 1]
    # class 0 keeps filters 0, 1: outside share 0.4 / 2.0; class 1 keeps 2, 3: 0.6 / 2.0
    np.testing.assert_allclose(GateConsistencyScore.from_net(net).score(outputs), [0.2, 0.3], rtol=1e-6)


@pytest.mark.parametrize(
    "name",
    ["csg_interp.applications.attacks", "csg_interp.applications.detection",
     "csg_interp.plotting.roc"],
)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_plot_roc_curves_keeps_given_colours():
    from matplotlib.colors import to_rgba

    y = np.array([0, 1])
    displays = plot_roc_curves({"a": (y, np.array([0.0, 1.0])), "b": (y, np.array([1.0, 0.0]))},
                               colors={"b": "tab:red"})
    assert to_rgba(displays[1].line_.get_color()) == to_rgba("tab:red")


# ---------------------------------------------------------------- supervised logistic detector
def test_logistic_features_hand_values():
    from csg_interp.applications.detection import LogisticGateScore

    outputs = ModelOutputs(torch.tensor([[2.0, 1.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    features = LogisticGateScore(GATE).features(outputs)
    expected = [0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.25, 0.0, math.log(5.0)]
    np.testing.assert_allclose(features[0], expected, rtol=1e-6)


def test_logistic_needs_fit_and_both_classes():
    from csg_interp.applications.detection import LogisticGateScore

    outputs = ModelOutputs(POOLED, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="not fitted"):
        LogisticGateScore(GATE).score(outputs)
    with pytest.raises(ValueError, match="did any attack on the fitting split succeed"):
        LogisticGateScore(GATE).fit(outputs, outputs.subset(torch.tensor([], dtype=torch.long)))
    with pytest.raises(ValueError, match="non-negative"):
        LogisticGateScore(GATE).features(ModelOutputs(-POOLED, torch.zeros(2, 2)))


def test_evaluate_detection_refits_supervised_scores_per_eps():
    from csg_interp.applications.detection import LogisticGateScore

    torch.manual_seed(0)
    net = _bright_dark_net()
    images, fit_images = torch.rand(30, 1, 6, 6), torch.rand(40, 1, 6, 6)
    labels, fit_labels = net(images).argmax(dim=1), net(fit_images).argmax(dim=1)
    logistic = LogisticGateScore(GATE)
    with pytest.raises(ValueError, match="fit_images"):
        evaluate_detection(net, [MaxSoftmaxScore()], images, labels, [0.5], supervised=[logistic])
    evaluation = evaluate_detection(net, [MaxSoftmaxScore()], images, labels, [0.0, 0.5],
                                    supervised=[logistic], fit_images=fit_images,
                                    fit_labels=fit_labels)
    assert [row["score"] for row in evaluation.rows] == ["max-softmax", "gate-logistic"] * 2
    assert evaluation.metric(0.0, "gate-logistic") is None
    assert 0.0 <= evaluation.metric(0.5, "gate-logistic") <= 1.0
    assert "gate-logistic" in evaluation.curves[0.5]
    # by default the supervised score is fitted on the evaluated attack (PGD)
    assert [a["attack"] for a in evaluation.fit_attacks] == ["pgd", "pgd"]
    assert [a["n_images"] for a in evaluation.fit_attacks] == [40, 40]
    assert evaluation.fit_attacks[0]["n_success"] == 0
    assert [r.get("fit_attack") for r in evaluation.rows] == [None, "pgd"] * 2


def _recording_attack(monkeypatch) -> list[tuple[int, str]]:
    """Wrap the attack the protocol calls; returns the list it appends (n images, method) to."""
    from csg_interp.applications import evaluation as evaluation_module

    calls: list[tuple[int, str]] = []
    real = evaluation_module.attack

    def recording(net, images, labels, method="pgd", **options):
        calls.append((int(images.shape[0]), method))
        return real(net, images, labels, method=method, **options)

    monkeypatch.setattr(evaluation_module, "attack", recording)
    return calls


def test_evaluate_detection_fits_supervised_scores_on_fit_method(monkeypatch):
    from csg_interp.applications.attacks import attack
    from csg_interp.applications.detection import LogisticGateScore

    torch.manual_seed(0)
    net = _bright_dark_net()
    images, fit_images = torch.rand(30, 1, 6, 6), torch.rand(40, 1, 6, 6)
    labels, fit_labels = net(images).argmax(dim=1), net(fit_images).argmax(dim=1)
    calls = _recording_attack(monkeypatch)
    evaluation = evaluate_detection(net, [MaxSoftmaxScore()], images, labels, [0.5], method="pgd",
                                    supervised=[LogisticGateScore(GATE)], fit_images=fit_images,
                                    fit_labels=fit_labels, fit_method="fgsm")
    assert calls == [(40, "fgsm"), (30, "pgd")]  # fit images FGSM-attacked, test images PGD
    assert [a["attack"] for a in evaluation.attacks] == ["pgd"]
    assert [a["attack"] for a in evaluation.fit_attacks] == ["fgsm"]
    rows = {row["score"]: row for row in evaluation.rows}
    assert (rows["gate-logistic"]["attack"], rows["gate-logistic"]["fit_attack"]) == ("pgd", "fgsm")
    assert "fit_attack" not in rows["max-softmax"]

    # the same numbers by hand: fit on FGSM (seed + 1) of the fit images, score PGD (seed 0)
    fitted = attack(net, fit_images, fit_labels, method="fgsm", eps=0.5, seed=1)
    fit_success = fitted.success
    assert evaluation.fit_attacks[0]["n_success"] == int(fit_success.sum()) > 0
    by_hand = LogisticGateScore(GATE).fit(
        model_outputs(net, fit_images).subset(fit_success),
        model_outputs(net, fitted.adversarial[fit_success]),
    )
    tested = attack(net, images, labels, method="pgd", eps=0.5, seed=0)
    assert evaluation.attacks[0]["n_success"] == int(tested.success.sum()) > 0
    clean = model_outputs(net, images).subset(tested.success)
    adversarial = model_outputs(net, tested.adversarial[tested.success])
    expected = detection_metrics(by_hand.score(clean), by_hand.score(adversarial))
    assert rows["gate-logistic"]["auc"] == pytest.approx(expected["auc"])
    assert rows["gate-logistic"]["tpr_at_fpr"] == pytest.approx(expected["tpr_at_fpr"])


def test_evaluate_detection_refuses_bad_fit_method():
    from csg_interp.applications.detection import LogisticGateScore

    net = _bright_dark_net()
    x, y = torch.rand(4, 1, 6, 6), torch.tensor([0, 1, 0, 1])
    logistic = [LogisticGateScore(GATE)]
    with pytest.raises(ValueError, match="unknown fit_method 'cw'; use one of fgsm, pgd"):
        evaluate_detection(net, [MaxSoftmaxScore()], x, y, [0.1], supervised=logistic,
                           fit_images=x, fit_labels=y, fit_method="cw")
    with pytest.raises(ValueError, match="pass supervised=.* or leave fit_method None"):
        evaluate_detection(net, [MaxSoftmaxScore()], x, y, [0.1], fit_method="fgsm")
