"""
Detecting adversarial digits from the gate
==========================================

A natural image of class ``ŷ`` activates mostly the filters the gate gives ``ŷ``; an image pushed
into ``ŷ`` by an attack keeps activation mass on the filters of its true class. The gate
consistency score is that share of pooled activation mass *outside* the predicted class's
filters. We attack correctly classified test digits with PGD (``captum.robust``, L∞, ε = 0.1 in
pixel units, 10 steps, non-adaptive: it does not know the detector) and compare the score's ROC
curve on the CSG model with the same score on the STD model (MI-derived gate, fitted on the
validation split) and with the max-softmax baseline.

A tiny model and a few hundred images: the numbers printed here are an illustration, not a
benchmark (see the detection guide for the measured results).
"""

# %%
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from csg_interp.applications import attack
from csg_interp.applications.detection import (
    GateConsistencyScore,
    MaxSoftmaxScore,
    detection_metrics,
    model_outputs,
)
from csg_interp.applications.plots import plot_roc_curves
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
data = csg.load_data()
images, labels = data.test.tensors()

# %%
# Scores on clean and attacked images
# -----------------------------------
features, val_labels = extract_features(std.net, data.val, progress=False)
scores = {
    "CSG": [GateConsistencyScore.from_net(csg.net, name="gate"), MaxSoftmaxScore()],
    "STD": [GateConsistencyScore.from_mi(mutual_information_matrix(features, val_labels, n_jobs=1),
                                         name="MI gate")],
}
curves = {}
for model_name, run in (("CSG", csg), ("STD", std)):
    result = attack(run.net, images, labels, method="pgd", eps=0.1, steps=10, seed=0)
    counted = result.correct & (result.adv_pred != result.labels)
    print(f"{model_name}: {int(counted.sum())} successful attacks on "
          f"{int(result.correct.sum())} correctly classified test digits")
    clean = model_outputs(run.net, images[counted])
    adversarial = model_outputs(run.net, result.adversarial[counted])
    for detector in scores[model_name]:
        name = f"{detector.name} ({model_name})"
        clean_scores, adv_scores = detector.score(clean), detector.score(adversarial)
        metrics = detection_metrics(clean_scores, adv_scores)
        print(f"  {name}: AUC {metrics['auc']:.3f}")
        y_true = np.r_[np.zeros(len(clean_scores)), np.ones(len(adv_scores))]
        curves[name] = (y_true, np.r_[clean_scores, adv_scores])

# %%
# ROC curves (adversarial = positive)
# -----------------------------------
plot_roc_curves(curves, title="PGD, ε = 0.1")
plt.show()
