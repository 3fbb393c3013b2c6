"""
Class-specific attribution maps over the images
===============================================

:class:`~csg_interp.attribution.CSGAttribution` is a Captum ``LayerAttribution``: one forward
pass gives, per image, the gate-weighted class activation map ``Σ_k G[c,k]·W[c,k]·A_k`` of the
target class (default: the predicted class). For the STD model, which has no gate, we use a gate
derived from its mutual-information matrix (``gate_from_mi``), fitted on the validation split --
never on the test images we explain -- so both models are explained the same way.

Maps are at layer resolution (2×2 for the 8×8 digits); the overlay upsamples them bilinearly with
Captum's ``LayerAttribution.interpolate``.
"""

# %%
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import AttributionOverlayDisplay, CSGAttribution
from csg_interp.metrics import extract_features, gate_from_mi, mutual_information_matrix
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

# %%
# An MI-derived gate for the STD model (validation split)
# -------------------------------------------------------
features, labels = extract_features(std.net, data.val, progress=False)
std_gate = gate_from_mi(mutual_information_matrix(features, labels, n_jobs=1))

explainers = {
    "CSG (learned gate)": CSGAttribution.from_net(csg.net),
    "STD (MI gate)": CSGAttribution.from_net(std.net, gate=std_gate),
}

# %%
# Maps of the predicted class on six test digits
# ----------------------------------------------
images, labels = data.test.tensors(torch.arange(6))
figure, axes = plt.subplots(2, 6, figsize=(12, 4.6))
for row, (name, explainer) in zip(axes, explainers.items()):
    net = csg.net if name.startswith("CSG") else std.net
    with torch.no_grad():
        predicted = net(images).argmax(1)
    maps = explainer.attribute(images, target=predicted, relu_attributions=True)
    for ax, image, single_map, label, guess in zip(row, images, maps, labels, predicted):
        AttributionOverlayDisplay.from_maps(
            image, single_map, title=f"{name.split()[0]}: {int(guess)} (true {int(label)})", ax=ax
        )
figure.tight_layout()
plt.show()
