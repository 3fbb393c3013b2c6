"""Adversarial-sample detection from gate statistics on Fashion-MNIST: CSG vs STD vs baselines.

Evaluates a CSG ResNet-8 and its STD twin (same seed, data and schedule) with
``csg_interp.applications.detect_run``: PGD (and FGSM) at ε = 0.03 and 0.1 on 1000 seeded test
images, scores fitted on 2000 validation images, paired protocol (successful attacks vs the same
clean images). The pair lives in ``runs/detection/fmnist-{csg,std}``; when it is missing it is
trained here first (``scratch`` preset, 12 epochs, a 12k training subset, 1 thread each: several
minutes). ``--quick`` uses a tiny digits pair instead (a smoke test, not the target).

Run: ``python benchmarks/bench_detection.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import interleaved_medians, markdown_table  # noqa: E402

TITLE = "Adversarial detection from gate statistics"
RUNS = ROOT / "runs" / "detection"
FMNIST = dict(dataset="fashion-mnist", model="resnet8", train_subset=12000, seed=0)
DIGITS = dict(dataset="digits", model="smallcnn", epochs=6, batch_size=32, gate_lr=0.1, seed=0)
EPS = (0.03, 0.1)
TARGET_AUC, TARGET_GAIN = 0.90, 5.0


def _ensure_pair(prefix: str, options: dict) -> tuple[Path, Path, list[str]]:
    """The CSG/STD run directories, trained with ``options`` if not there yet."""
    from csg_interp.training import TrainConfig, fit

    notes = []
    dirs = []
    for name, gate in (("csg", True), ("std", False)):
        out = RUNS / f"{prefix}-{name}"
        if not (out / "last.pt").is_file():
            torch.set_num_threads(1)
            start = time.perf_counter()
            fit(TrainConfig(**options, gate=gate, device="cpu", out=str(out)), progress=False)
            notes.append(f"trained `{out.relative_to(ROOT)}` here in {time.perf_counter() - start:.0f} s "
                         "(1 thread)")
        dirs.append(out)
    return dirs[0], dirs[1], notes


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _timing_ratio(run_dir: Path, threads: int) -> tuple[float, float]:
    """(PGD-10 time / one forward pass, gate-score time / one forward pass) on 128 test images."""
    from csg_interp.applications import attack
    from csg_interp.applications.detection import GateConsistencyScore, model_outputs
    from csg_interp.training import load_run

    torch.set_num_threads(threads)
    run = load_run(run_dir)
    images, labels = run.load_data().test.tensors(torch.arange(128))
    score = GateConsistencyScore.from_net(run.net)
    outputs = model_outputs(run.net, images)

    def forward():
        with torch.no_grad():
            run.net(images)

    times = interleaved_medians(
        {
            "forward": forward,
            "pgd": lambda: attack(run.net, images, labels, "pgd", 0.1, steps=10),
            "score": lambda: score.score(outputs),
        },
        rounds=3, repeats=1, warmup=0,
    )
    return times["pgd"] / times["forward"], times["score"] / times["forward"]


def run(quick: bool = False) -> str:
    from csg_interp.applications.pipeline import detect_run
    from csg_interp.training import load_run

    prefix, options = ("digits", DIGITS) if quick else ("fmnist", FMNIST)
    csg_dir, std_dir, notes = _ensure_pair(prefix, options)
    threads = 2
    torch.set_num_threads(threads)
    num_images, fit_images = (200, 200) if quick else (1000, 2000)
    results = {}
    for method in ("pgd", "fgsm"):
        start = time.perf_counter()
        results[method] = detect_run(
            csg_dir, std_dir, method=method, eps=EPS, num_images=num_images, fit_images=fit_images,
            device="cpu", out=RUNS / f"{prefix}-detect-{method}", logistic=method == "pgd",
            logistic_images=min(fit_images, 1000),
        )
        notes.append(f"{method.upper()} evaluation (both models, {len(EPS)} ε): "
                     f"{time.perf_counter() - start:.0f} s at {threads} threads")
    csg, std = load_run(csg_dir), load_run(std_dir)
    accuracy = {name: r.history[-1].get("val_acc") for name, r in (("csg", csg), ("std", std))}
    density = float(csg.net.gate.density().detach())

    lines = [
        f"Models: `{options['model']}` on `{options['dataset']}`"
        + (f" ({options['train_subset']} training images)" if "train_subset" in options else "")
        + f", `scratch` preset, seed {options['seed']}; CSG gate L1-density {density:.3f}; "
        f"last-epoch val accuracy CSG {accuracy['csg']:.4f}, STD {accuracy['std']:.4f}.",
        f"Protocol: {num_images} seeded test images, scores fitted on {fit_images} validation images; "
        "PGD 10 steps of 2.5·ε/10 with a random start, FGSM one step of ε; untargeted, "
        "cross-entropy, L∞ in [0, 1] pixel units; **non-adaptive** (the attack does not know the "
        "detector). Positives: successful attacks on correctly classified images; negatives: the "
        "same images clean. Scores: `gate` = pooled mass outside the predicted class's gate row "
        "(CSG's learned gate), `mi-gate` = the same with `gate_from_mi` of the validation MI matrix, "
        "`max-softmax` (1 − max p), `mahalanobis` (tied LedoitWolf covariance, validation "
        "features); PGD only: `gate-logistic` / `mi-gate-logistic` = **supervised** logistic "
        f"regression on per-class gate statistics, refitted per ε on PGD attacks on "
        f"{min(fit_images, 1000)} validation images.",
        "",
    ]
    header = ["attack", "ε", "model", "fooled", "score", "ROC AUC", "TPR @ 5 % FPR"]
    rows = []
    for method, result in results.items():
        fooled = {(a["model"], a["eps"]): f"{a['n_success']}/{a['n_correct']}" for a in result["attacks"]}
        for row in result["rows"]:
            rows.append([method.upper(), f"{row['eps']:g}", row["model"].upper(),
                         fooled[(row["model"], row["eps"])], f"`{row['score']}`",
                         _fmt(row["auc"]), _fmt(row["tpr_at_fpr"])])
    lines.append(markdown_table(header, rows))
    lines.append("")
    lines.append(f"Target (PGD): CSG `gate` AUC ≥ {TARGET_AUC:.2f} and ≥ {TARGET_GAIN:g} points "
                 "above the STD `mi-gate` and above the CSG `max-softmax`:")
    lines.append("")
    for summary in results["pgd"]["summary"]:
        gate = summary.get("csg_gate_auc")
        gain_std = summary.get("gain_vs_std_points")
        gain_msp = summary.get("gain_vs_max_softmax_points")
        met = (gate is not None and gain_std is not None and gain_msp is not None
               and gate >= TARGET_AUC and gain_std >= TARGET_GAIN and gain_msp >= TARGET_GAIN)
        lines.append(
            f"- ε = {summary['eps']:g}: gate AUC {_fmt(gate)}, "
            f"{'–' if gain_std is None else f'{gain_std:+.1f}'} points vs STD mi-gate, "
            f"{'–' if gain_msp is None else f'{gain_msp:+.1f}'} points vs max-softmax → "
            f"**{'met' if met else 'not met'}**"
        )
    for summary in results["pgd"]["summary"]:
        logistic = summary.get("csg_gate_logistic_auc")
        std_logistic = summary.get("std_mi_gate_logistic_auc")
        msp = summary.get("csg_max_softmax_auc")
        if logistic is None or std_logistic is None or msp is None:
            continue
        met = (logistic >= TARGET_AUC and 100 * (logistic - std_logistic) >= TARGET_GAIN
               and 100 * (logistic - msp) >= TARGET_GAIN)
        lines.append(
            f"- ε = {summary['eps']:g}, supervised `gate-logistic`: AUC {logistic:.3f}, "
            f"{100 * (logistic - std_logistic):+.1f} points vs STD `mi-gate-logistic`, "
            f"{100 * (logistic - msp):+.1f} points vs max-softmax → **{'met' if met else 'not met'}**"
        )
    if not quick:
        pgd_ratio, score_ratio = _timing_ratio(csg_dir, threads)
        lines += ["", f"Cost ({threads} threads, 128 images, medians of 3 interleaved rounds): "
                  f"PGD-10 = {pgd_ratio:.1f}× a forward pass; the gate score on pooled features "
                  f"= {score_ratio:.3f}× a forward pass."]
    lines += [""] + [f"- {note}" for note in notes]
    if quick:
        lines.append("- **--quick: tiny digits pair, a smoke test; the target is measured without "
                     "--quick.**")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
