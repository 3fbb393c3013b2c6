"""Adversarial detection on the full-accuracy Fashion-MNIST models, with the cross-attack test.

Runs ``csg_interp.workflows.detect_run`` on committed models of ``experiments/models/full/``: a
gated run (``--run csg``, the paper's method, or ``--run joint_own01``, the owner-separation
extension) against its STD twin ``std_s<seed>``, per seed, four times: PGD and FGSM on 1000 test
images at ε 0.03 and 0.1, each with the supervised logistic detector fitted on validation images
attacked with the same attack and with the other one (fit PGD → test FGSM and the reverse). Every
detector and threshold is fitted on validation images (and their attacks); the test images are
only scored. Results: ``experiments/results/detect_full/<run>_s<seed>/<test>_fit-<fit>/``
(``metrics.json`` and the ROC figures); a finished folder is skipped.

Usage::

    python experiments/detect_full.py --run csg --seeds 0,1,2     # 5-7 min a seed on 2 cores
    python experiments/detect_full.py --run joint_own01 --seeds 0,1,2
    python experiments/detect_full.py --table             # seed 0's table of docs/detection.md
    python experiments/detect_full.py --summary           # the means over seeds of docs/detection.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODELS = HERE / "models" / "full"
OUT = HERE / "results" / "detect_full"
#: (attack on the test images, attack on the validation images the logistic detector is fitted on)
PAIRS = [("pgd", "pgd"), ("pgd", "fgsm"), ("fgsm", "fgsm"), ("fgsm", "pgd")]
EPS = (0.03, 0.1)
#: The gated runs with committed models, and how the tables name them.
RUNS = {"csg": "CSG (paper's method)", "joint_own01": "CSG + owner separation (joint)"}
#: Scores shown, by kind of model: the gated model's own gate and the STD twin's MI-derived gate.
SCORES = {"gated": ["gate", "max-softmax", "mahalanobis", "gate-logistic"],
          "std": ["mi-gate", "max-softmax", "mahalanobis", "mi-gate-logistic"]}  # fmt: skip


def folder_of(run: str, seed: int, attack: str, fit: str, root: Path = OUT) -> Path:
    """The result folder of one detection: ``<root>/<run>_s<seed>/<attack>_fit-<fit>``."""
    return root / f"{run}_s{seed}" / f"{attack}_fit-{fit}"


def run_all(run: str = "csg", seeds: tuple[int, ...] = (0,)) -> None:
    """Run the detections of ``run`` at ``seeds`` that are not finished yet."""
    from csg_interp.workflows.detect import detect_run

    for seed in seeds:
        for attack, fit in PAIRS:
            folder = folder_of(run, seed, attack, fit)
            if (folder / "metrics.json").is_file():
                print(f"[skip] {folder.parent.name}/{folder.name}", flush=True)
                continue
            folder.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            result = detect_run(
                MODELS / f"{run}_s{seed}", MODELS / f"std_s{seed}", method=attack, eps=EPS,
                logistic=True, fit_attack=fit, device="cpu", seed=seed, out=folder,
            )  # fmt: skip
            print(f"[done] {folder.parent.name}/{folder.name} in "
                  f"{time.perf_counter() - start:.0f} s\n{result.summary()}", flush=True)  # fmt: skip


def _rows_by_kind(metrics: dict) -> dict[str, dict[tuple[float, str], dict]]:
    """``{"gated"|"std": {(eps, score): row}}`` of one ``metrics.json``."""
    names = {name: ("gated" if info["has_gate"] else "std")
             for name, info in metrics["models"].items()}  # fmt: skip
    out: dict[str, dict[tuple[float, str], dict]] = {"gated": {}, "std": {}}
    for row in metrics["rows"]:
        out[names[row["model"]]][(row["eps"], row["score"])] = row
    return out


def table(run: str = "csg", seed: int = 0, root: Path = OUT) -> str:
    """One row per test attack, ε and fitting attack of one seed; ROC AUC of each score (TPR at
    5 % FPR in brackets), the gated model's scores then the STD twin's."""
    header = ["test attack", "ε", "logistic fitted on"]
    header += [f"CSG {s}" for s in SCORES["gated"]] + [f"STD {s}" for s in SCORES["std"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for attack, fit in PAIRS:
        path = folder_of(run, seed, attack, fit, root) / "metrics.json"
        if not path.is_file():
            continue
        rows = _rows_by_kind(json.loads(path.read_text()))
        for eps in EPS:
            cells = [attack.upper(), f"{eps:g}", fit.upper()]
            for kind in ("gated", "std"):
                for score in SCORES[kind]:
                    row = rows[kind].get((eps, score))
                    cells.append("–" if row is None or row["auc"] is None else
                                 f"{row['auc']:.3f} ({row['tpr_at_fpr']:.2f})")  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def collect(root: Path = OUT) -> dict[tuple[str, str, str, float, str], dict[int, float]]:
    """Every ROC AUC found under ``root``.

    Returns:
        ``{(model, test attack, fit attack, eps, score): {seed: auc}}``, where ``model`` is a key
        of :data:`RUNS` or ``"std"``. An STD twin appears in the folder of every gated run of its
        seed; it is the same model, scored on the same images, so its values must agree.

    Raises:
        ValueError: when two folders disagree on an STD twin's AUC by more than 1e-9.
    """
    values: dict[tuple[str, str, str, float, str], dict[int, float]] = {}
    for run in RUNS:
        for folder in sorted(root.glob(f"{run}_s*")):
            seed = int(folder.name.rsplit("_s", 1)[1])
            for attack, fit in PAIRS:
                path = folder_of(run, seed, attack, fit, root) / "metrics.json"
                if not path.is_file():
                    continue
                rows = _rows_by_kind(json.loads(path.read_text()))
                for kind, model in (("gated", run), ("std", "std")):
                    for (eps, score), row in rows[kind].items():
                        if row["auc"] is None:
                            continue
                        seen = values.setdefault((model, attack, fit, eps, score), {})
                        if seed in seen and abs(seen[seed] - row["auc"]) > 1e-9:
                            raise ValueError(
                                f"the STD twin of seed {seed} has two AUCs for {score} on "
                                f"{attack} ε {eps} ({seen[seed]:.6f}, {row['auc']:.6f}): the "
                                f"detections are not reproducible; rerun {folder}"
                            )
                        seen[seed] = row["auc"]
    return values


#: Columns of the summary: (test attack, fitting attack of the logistic detector, ε).
SUMMARY_COLUMNS = [("pgd", "pgd", 0.03), ("pgd", "pgd", 0.1), ("fgsm", "fgsm", 0.03),
                   ("fgsm", "fgsm", 0.1), ("pgd", "fgsm", 0.03), ("fgsm", "pgd", 0.03)]  # fmt: skip


def _mean_std(by_seed: dict[int, float]) -> str:
    """``mean ± std`` of the AUCs over the seeds (the mean alone for one seed)."""
    vals = list(by_seed.values())
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.fmean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def summary(root: Path = OUT) -> str:
    """Mean ± std ROC AUC over the seeds found, one row per model and score.

    The unsupervised scores do not depend on the attack the logistic detector is fitted on, so
    the two cross-attack columns show only the supervised ones ("="). Each row names its seeds.
    """
    values = collect(root)
    header = ["model", "seeds", "score"] + [
        f"{t.upper()} {eps:g}" + ("" if t == f else f", fitted on {f.upper()}")
        for t, f, eps in SUMMARY_COLUMNS
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, label in [*RUNS.items(), ("std", "STD twin")]:
        for score in SCORES["std" if model == "std" else "gated"]:
            cells, seeds = [], set()
            for attack, fit, eps in SUMMARY_COLUMNS:
                by_seed = values.get((model, attack, fit, eps, score))
                if attack != fit and not score.endswith("logistic"):
                    cells.append("=")
                elif not by_seed:
                    cells.append("–")
                else:
                    seeds |= set(by_seed)
                    cells.append(_mean_std(by_seed))
            if seeds:
                lines.append("| " + " | ".join(
                    [label, ",".join(map(str, sorted(seeds))), score, *cells]) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=sorted(RUNS), default="csg",
                        help="the gated run family (default: csg, the paper's method)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--table", action="store_true",
                        help="print the table of --run at the first of --seeds only")
    parser.add_argument("--summary", action="store_true",
                        help="print the means over seeds of every result found only")
    args = parser.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. --seeds 0,1,2")
    missing = [s for s in seeds if not (MODELS / f"{args.run}_s{s}").is_dir()
               or not (MODELS / f"std_s{s}").is_dir()]  # fmt: skip
    if missing and not (args.table or args.summary):
        parser.error(f"no committed models for --run {args.run} at seeds {missing} in {MODELS}; "
                     "commit them with experiments/full_accuracy.py first")  # fmt: skip
    if args.summary:
        print(summary())
        return 0
    if not args.table:
        import torch

        torch.set_num_threads(2)
        run_all(args.run, seeds)
    print(table(args.run, seeds[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
