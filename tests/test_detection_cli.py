"""``csg-interp detect`` / ``detect_run`` on the tiny digits pair: files, consistency, bad input."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from csg_interp.cli import main

SMALL = ["--num-images", "80", "--fit-images", "200", "--steps", "5"]


@pytest.fixture(scope="module")
def detect_result(tiny_digits_pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("detect")
    code = main(["detect", str(tiny_digits_pair["csg"]), "--baseline", str(tiny_digits_pair["std"]),
                 "--eps", "0.1", "0.3", "--device", "cpu", "--out", str(out), *SMALL])
    assert code == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_detect_writes_metrics_and_roc_figures(detect_result):
    out, result = detect_result
    assert result["figures"] == ["roc_pgd_eps0.1.png", "roc_pgd_eps0.3.png"]
    for name in result["figures"]:
        assert (out / name).stat().st_size > 1000
    assert result["protocol"]["adaptive"] is False
    assert result["protocol"]["fit_split"] == "val" and result["protocol"]["evaluation_split"] == "test"
    assert result["models"]["csg"]["scores"] == ["gate", "mi-gate", "max-softmax", "mahalanobis"]
    assert result["models"]["std"]["scores"] == ["mi-gate", "max-softmax", "mahalanobis"]
    assert result["models"]["std"]["gate_density"] is None


def test_detect_rows_agree_with_attack_counts(detect_result):
    _, result = detect_result
    assert len(result["rows"]) == 2 * 4 + 2 * 3
    successes = {(a["model"], a["eps"]): a["n_success"] for a in result["attacks"]}
    for row in result["rows"]:
        n = successes[(row["model"], row["eps"])]
        assert row["n_clean"] == row["n_adversarial"] == n
        if n:
            assert 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["tpr_at_fpr"] <= 1.0
    for attack in result["attacks"]:
        assert attack["n_images"] == 80 and attack["n_success"] <= attack["n_correct"]


def test_detect_summary_is_the_difference_of_rows(detect_result):
    _, result = detect_result
    rows = {(r["model"], r["eps"], r["score"]): r["auc"] for r in result["rows"]}
    for summary in result["summary"]:
        eps = summary["eps"]
        assert summary["csg_gate_auc"] == rows[("csg", eps, "gate")]
        if summary["csg_gate_auc"] is not None and summary["std_mi_gate_auc"] is not None:
            expected = 100 * (rows[("csg", eps, "gate")] - rows[("std", eps, "mi-gate")])
            assert summary["gain_vs_std_points"] == pytest.approx(expected)


def test_detect_on_std_run_alone_uses_the_mi_gate(tiny_digits_pair, tmp_path):
    code = main(["detect", str(tiny_digits_pair["std"]), "--eps", "0.3", "--attack", "fgsm",
                 "--device", "cpu", "--out", str(tmp_path), *SMALL])
    assert code == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert {row["score"] for row in result["rows"]} == {"mi-gate", "max-softmax", "mahalanobis"}
    assert result["protocol"]["steps"] == 1


def test_detect_refuses_eps_outside_unit_interval(tiny_digits_pair, capsys):
    assert main(["detect", str(tiny_digits_pair["csg"]), "--eps", "8", "--device", "cpu"]) == 2  # usage
    assert "pixel units" in capsys.readouterr().err


def test_detect_refuses_missing_run(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nope"), "--device", "cpu"]) == 1
    assert "not found" in capsys.readouterr().err


def test_demo_stage_detect_is_registered_and_skips_without_runs(tmp_path, capsys):
    from csg_interp.demo import STAGES, DemoContext, stage_detect

    assert ("detect", stage_detect) in STAGES
    ctx = DemoContext(tmp_path, "digits", None, "cpu", 0, True)
    stage_detect(ctx)
    assert "skipped" in capsys.readouterr().out and "detect" not in ctx.artifacts


LOGISTIC = ["--eps", "0.3", "--logistic", "--logistic-images", "100", "--device", "cpu", *SMALL]


@pytest.fixture(scope="module")
def logistic_runs(tiny_digits_pair, tmp_path_factory):
    """``detect --logistic`` on the CSG run twice: default, and ``--fit-attack fgsm`` (PGD test).

    Returns ``{"default" | "cross": (metrics, attack calls, stdout)}``; an attack call is
    ``(number of images, method)`` as the protocol passed it to the attack function.
    """
    from csg_interp.applications import evaluation as evaluation_module

    real, results = evaluation_module.attack, {}
    for name, extra in (("default", []), ("cross", ["--attack", "pgd", "--fit-attack", "fgsm"])):
        out, calls = tmp_path_factory.mktemp(f"detect-{name}"), []

        def recording(net, images, labels, method="pgd", _calls=calls, **options):
            _calls.append((int(images.shape[0]), method))
            return real(net, images, labels, method=method, **options)

        argv = ["detect", str(tiny_digits_pair["csg"]), *LOGISTIC, *extra, "--out", str(out)]
        text = io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(text):
            patch.setattr(evaluation_module, "attack", recording)
            code = main(argv)
        assert code == 0
        results[name] = (json.loads((out / "metrics.json").read_text()), calls, text.getvalue())
    return results


def test_detect_logistic_option_adds_the_supervised_score(logistic_runs):
    result, calls, stdout = logistic_runs["default"]
    assert result["models"]["csg"]["scores"][-1] == "gate-logistic"
    assert result["protocol"]["logistic_images"] == 100
    row = next(r for r in result["rows"] if r["score"] == "gate-logistic")
    assert result["summary"][0]["csg_gate_logistic_auc"] == row["auc"]
    # default: the logistic detector is fitted on the tested attack, as before --fit-attack
    assert result["protocol"]["attack"] == result["protocol"]["fit_attack"] == "pgd"
    assert result["protocol"]["fit_steps"] == result["protocol"]["steps"] == 5
    assert row["fit_attack"] == "pgd"
    assert calls == [(100, "pgd"), (80, "pgd")]
    assert [(a["attack"], a["n_images"]) for a in result["fit_attacks"]] == [("pgd", 100)]
    assert "fitted on pgd attacks on validation images, tested on pgd\n" in stdout


def test_detect_fit_attack_fits_the_logistic_detector_on_another_attack(logistic_runs):
    result, calls, stdout = logistic_runs["cross"]
    assert calls == [(100, "fgsm"), (80, "pgd")]  # the 100 fit images FGSM, the 80 test images PGD
    protocol = result["protocol"]
    assert (protocol["attack"], protocol["fit_attack"]) == ("pgd", "fgsm")
    assert (protocol["steps"], protocol["fit_steps"]) == (5, 1)
    assert [(a["attack"], a["n_images"]) for a in result["fit_attacks"]] == [("fgsm", 100)]
    assert [a["attack"] for a in result["attacks"]] == ["pgd"]
    row = next(r for r in result["rows"] if r["score"] == "gate-logistic")
    assert (row["attack"], row["fit_attack"]) == ("pgd", "fgsm")
    assert "tested on pgd (cross-attack)" in stdout and "fitting fgsm ε=0.3 fooled" in stdout
    # the test attack and the unsupervised scores do not depend on the fitting attack
    default = logistic_runs["default"][0]
    assert result["attacks"] == default["attacks"]
    unsupervised = [r for r in result["rows"] if r["score"] != "gate-logistic"]
    assert unsupervised == [r for r in default["rows"] if r["score"] != "gate-logistic"]
    assert all("fit_attack" not in r for r in unsupervised) and len(unsupervised) == 4


def test_detect_fit_attack_needs_logistic(tmp_path, capsys):
    # a usage error, raised before the run is loaded (so no run directory is needed)
    assert main(["detect", str(tmp_path), "--fit-attack", "fgsm", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("csg-interp detect: error: --fit-attack chooses the attack")
    assert "add --logistic" in err and "\n" not in err
