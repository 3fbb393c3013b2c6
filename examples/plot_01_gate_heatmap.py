"""
Gate heatmap of a CSG model
===========================

Train a small CNN with a class-specific gate (CSG) on scikit-learn's 8×8 digits -- a few seconds
on a CPU -- and draw its gate ``G`` (classes × filters). Filters are sorted by the class their
gate column assigns them to (argmax over classes), so class-specific filters form a block
diagonal; the white lines separate the classes.

All gallery examples share one cached STD/CSG pair: the first one trains it, the others load it.
"""

# %%
# Train (or load) the tiny pair
# -----------------------------
# ``gate_lr=0.1``, above the ``scratch`` preset's gate learning rate (printed below, as the
# preset resolves it), so that 8 epochs -- 3 of them CSG epochs -- are enough for the gate to
# become sparse on 8×8 digits.
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import GateHeatmapDisplay
from csg_interp.report import plot_training_curves
from csg_interp.training import TrainConfig, fit

torch.set_num_threads(1)
CACHE = Path(os.environ.get("CSG_INTERP_GALLERY_CACHE",
                            Path(tempfile.gettempdir()) / "csg_interp_gallery"))


def tiny_run(gate: bool = True):
    """The gallery's digits run (CSG or its STD twin): trained once, then loaded."""
    out = CACHE / ("csg" if gate else "std")
    config = TrainConfig(dataset="digits", model="smallcnn", epochs=8, batch_size=32,
                         gate_lr=0.1, seed=0, gate=gate, out=str(out))
    try:  # a finished run of this config loads at once, a partial one resumes
        return fit(config, resume=True, progress=False)
    except ValueError:  # the cache holds a run of another config: train afresh
        shutil.rmtree(out, ignore_errors=True)
        return fit(config, progress=False)


preset = TrainConfig(dataset="digits", model="smallcnn", epochs=8).resolved()
print(f"scratch preset: gate_lr {preset.gate_lr}, lam {preset.lam}, tau {preset.tau}")
csg = tiny_run(gate=True)
print(f"{csg.config.model} on {csg.config.dataset}: {csg.epochs_done} epochs, "
      f"{csg.manifest['schedule']['csg_epochs']} of them CSG epochs, gate_lr {csg.config.gate_lr}")
print("test accuracy", round(csg.manifest["result"]["test_acc"], 4),
      "| gate L1-density", round(float(csg.net.gate.density().detach()), 4))

# %%
# The gate
# --------
display = GateHeatmapDisplay.from_net(csg.net, csg.classes)
print(textwrap.fill(display.caption, 88))  # the caption, wrapped for reading
plt.show()

# %%
# How it got there
# ----------------
# The per-epoch log (``metrics.jsonl``); CSG epochs are shaded. The density falls in CSG
# epochs only: the gate is trained and projected there, never in STD epochs.
figure, panels = plot_training_curves(csg.history)
plt.show()
