"""
Mutual information: CSG vs STD, and the paper's four-panel figure
=================================================================

How class-specific is each filter? For every filter ``k`` and class ``c`` we estimate the mutual
information between the filter's pooled activation and the indicator ``y == c`` on the test split
(scikit-learn's k-NN estimator, ``n_neighbors=3``, ``random_state=0``: the reference code's
protocol). The MI score (MIS) is the mean over filters of the largest MI over classes.

Then the four-panel figure of Liang et al. (2020): the gate ``G``, the final-layer weights ``W`` of
the CSG model and of the STD model, and ``G ⊙ W``.
"""

# %%
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import GateWeightPanelsDisplay, MIComparisonDisplay
from csg_interp.metrics import extract_features, mutual_information_matrix
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


csg, std = tiny_run(gate=True), tiny_run(gate=False)
test = csg.load_data().test

# %%
# MI matrices on the test split
# -----------------------------
# Features are the global-average-pooled output of the gated layer, gate bypassed (what the
# network computes at test time).
matrices = {}
for name, run in (("CSG", csg), ("STD", std)):
    features, labels = extract_features(run.net, test, progress=False)
    matrices[name] = mutual_information_matrix(features, labels, n_jobs=1)

display = MIComparisonDisplay.from_matrices(matrices["CSG"], matrices["STD"], csg.classes)
print(textwrap.fill(display.caption, 88))  # the caption, wrapped for reading
plt.show()

# %%
# The four-panel figure
# ---------------------
# Each panel is min-max scaled to [0, 1]. The CSG panels share the gate's filter order; the STD
# model's filters are unrelated to the CSG model's, so its weights are sorted by their own argmax.
panels = GateWeightPanelsDisplay.from_nets(csg.net, std.net, csg.classes)
print(textwrap.fill(panels.caption, 88))
plt.show()
