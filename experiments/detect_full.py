"""Adversarial detection on the full-accuracy Fashion-MNIST pair, with the cross-attack test.

Runs ``csg_interp.workflows.detect_run`` on the committed seed-0 models
(``experiments/models/full/csg_s0`` against its STD twin ``std_s0``) four times: PGD and FGSM on
1000 test images at ε 0.03 and 0.1, each with the supervised logistic detector fitted on
validation images attacked with the same attack and with the other one (fit PGD → test FGSM and
the reverse). Every detector and threshold is fitted on validation images (and their attacks);
the test images are only scored. Results: ``experiments/results/detect_full/<test>_fit-<fit>/``
(``metrics.json`` and the ROC figures); a finished folder is skipped.

Usage::

    python experiments/detect_full.py            # the four runs (minutes on 2 cores)
    python experiments/detect_full.py --table    # the Markdown table of docs/detection.md
"""

from __future__ import annotations

import argparse
import json
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
#: Scores shown, by model: the CSG model's own gate and the STD twin's MI-derived gate.
SCORES = {"csg": ["gate", "max-softmax", "mahalanobis", "gate-logistic"],
          "std": ["mi-gate", "max-softmax", "mahalanobis", "mi-gate-logistic"]}  # fmt: skip


def run_all(seed: int = 0) -> None:
    """Run the four detections that are not finished yet."""
    from csg_interp.workflows.detect import detect_run

    OUT.mkdir(parents=True, exist_ok=True)
    for attack, fit in PAIRS:
        folder = OUT / f"{attack}_fit-{fit}"
        if (folder / "metrics.json").is_file():
            print(f"[skip] {folder.name}", flush=True)
            continue
        start = time.perf_counter()
        result = detect_run(
            MODELS / f"csg_s{seed}", MODELS / f"std_s{seed}", method=attack, eps=EPS,
            logistic=True, fit_attack=fit, device="cpu", seed=seed, out=folder,
        )  # fmt: skip
        print(f"[done] {folder.name} in {time.perf_counter() - start:.0f} s\n{result.summary()}",
              flush=True)  # fmt: skip


def table() -> str:
    """One row per test attack, ε and fitting attack; ROC AUC of each score (TPR at 5 % FPR in
    brackets), the CSG model's scores then the STD twin's."""
    header = ["test attack", "ε", "logistic fitted on"]
    header += [f"CSG {s}" for s in SCORES["csg"]] + [f"STD {s}" for s in SCORES["std"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for attack, fit in PAIRS:
        path = OUT / f"{attack}_fit-{fit}" / "metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        models = {("csg" if info["has_gate"] else "std"): name
                  for name, info in metrics["models"].items()}  # fmt: skip
        for eps in EPS:
            cells = [attack.upper(), f"{eps:g}", fit.upper()]
            for kind in ("csg", "std"):
                for score in SCORES[kind]:
                    row = next((r for r in metrics["rows"] if r["model"] == models[kind]
                                and r["eps"] == eps and r["score"] == score), None)  # fmt: skip
                    cells.append("–" if row is None or row["auc"] is None else
                                 f"{row['auc']:.3f} ({row['tpr_at_fpr']:.2f})")  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the table only")
    parser.add_argument("--seed", type=int, default=0, help="the committed pair's seed")
    args = parser.parse_args(argv)
    if not args.table:
        import torch

        torch.set_num_threads(2)
        run_all(args.seed)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
