"""Draw "MIS along training" from experiments/full_accuracy.py's JSONs (no training, no MI).

Usage::

    python experiments/plot_curves.py            # docs/_static/mis_along_training.png

Left: the MIS of 2000 stratified validation images after every epoch (the library's ``sorted``
path of the reference estimator), STD twin and CSG model of each seed with per-epoch probes; CSG
epochs are marked. Right: the test accuracy after every epoch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "full"
FIGURE = HERE.parent / "docs" / "_static" / "mis_along_training.png"


def load_curves(results: Path = RESULTS) -> dict[str, dict]:
    """``{"<variant>_s<seed>": result}`` for every result JSON with per-epoch probes."""
    curves = {}
    for path in sorted(results.glob("*.json")):
        result = json.loads(path.read_text())
        if result.get("curve") and "val_mis_2000" in result["curve"][0]:
            curves[path.stem] = result
    return curves


def plot(curves: dict[str, dict], path: Path = FIGURE) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for name, result in curves.items():
        curve = result["curve"]
        epochs = [row["epoch"] + 1 for row in curve]
        style = "-" if result["config"]["gate"] else "--"
        left.plot(epochs, [row["val_mis_2000"] for row in curve], style, marker="o", markersize=3,
                  label=name)  # fmt: skip
        right.plot(epochs, [row["test_acc"] for row in curve], style, marker="o", markersize=3,
                   label=name)  # fmt: skip
        for row in curve:
            if row["kind"] != "std" and result["config"]["gate"]:
                left.axvspan(row["epoch"] + 0.5, row["epoch"] + 1.5, color="0.9", zorder=0)
    left.set(xlabel="epoch", ylabel="MIS (2000 validation images)",
             title="MIS along training (grey: CSG epochs)")  # fmt: skip
    right.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy along training",
              ylim=(0.70, 0.95))  # fmt: skip
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    curves = load_curves()
    if not curves:
        raise SystemExit(f"no result with per-epoch probes in {RESULTS}")
    print(plot(curves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
