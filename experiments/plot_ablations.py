"""Draw "what each ablation does" from experiments/full_accuracy.py's JSONs (no training, no MI).

Usage::

    python experiments/plot_ablations.py         # docs/_static/ablations_full.png

One arrow per gated variant, from its STD twin to the variant, in the (test accuracy, MIS)
plane, both at the seeds the two have in common (``make_table.against_twin``): an arrow that
points up and not left is a gain in entanglement at no cost in accuracy. The label gives the
variant, its MIS ratio and the seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_table import against_twin, load_results  # noqa: E402

FIGURE = HERE.parent / "docs" / "_static" / "ablations_full.png"


def plot(rows: list[dict], path: Path = FIGURE):
    """Draw the arrows of ``rows`` (:func:`make_table.against_twin`) and save them to ``path``.

    Args:
        rows: one dict per variant with ``variant``, ``seeds``, ``acc``, ``mis``, ``twin_acc``,
            ``twin_mis`` and ``mis_ratio``.
        path: the PNG to write.

    Returns:
        The matplotlib figure (closed after saving; its artists stay inspectable).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    # tab20 and a cycle of markers: up to 20 variants get a colour each, and neighbours in the
    # legend differ by marker as well.
    colors, markers = plt.get_cmap("tab20"), "os^Dv"
    for index, row in enumerate(rows):
        color, marker = colors(index % 20), markers[index % len(markers)]
        ax.annotate("", xy=(row["acc"], row["mis"]), xytext=(row["twin_acc"], row["twin_mis"]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5})  # fmt: skip
        ax.plot([row["twin_acc"]], [row["twin_mis"]], "o", mfc="none", color=color)
        seeds = ("seeds " if len(row["seeds"]) > 1 else "seed ") + ",".join(map(str, row["seeds"]))
        ax.plot([row["acc"]], [row["mis"]], marker, color=color,
                label=f"{row['variant']} ×{row['mis_ratio']:.2f} ({seeds})")  # fmt: skip
    ax.set(xlabel="test accuracy (10k test split)", ylabel="MIS (10k test split)",
           title="Each variant (filled) against its STD twin (hollow), same seeds")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def main() -> int:
    rows = against_twin(load_results("full"))
    if not rows:
        raise SystemExit(f"no gated run with an STD twin in {HERE / 'results' / 'full'}")
    plot(rows)
    print(FIGURE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
