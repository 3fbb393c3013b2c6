"""
A vision transformer with a class-specific gate
===============================================

The gate works on a timm ``VisionTransformer`` too: its "filters" are the channels of the final
patch-token embeddings. ``CSGNet`` lays the patch tokens out on the patch grid, so the gated map
is an (N, D, h, w) tensor like a CNN's and every analysis -- the gate, the MI matrix, class maps
-- runs unchanged. With average token pooling and no ``fc_norm`` (timm's
``class_token=False, global_pool="avg", fc_norm=False``) the head is GAP → linear, so
``CSGAttribution``'s ``cam`` maps are exact: their spatial mean plus the bias is the CSG-path
logit (docs/models.md says where the gate sits in other timm models).

A tiny ViT (patch 4 on the 8×8 digits: a 2×2 grid of patches, 32 channels, 2 blocks) is trained
here in seconds, with and without the gate; ``experiments/vit_fashion_mnist.py`` is the
full-accuracy run on Fashion-MNIST.
"""

# %%
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import (
    AttributionOverlayDisplay,
    CSGAttribution,
    GateHeatmapDisplay,
    MIComparisonDisplay,
)
from csg_interp.metrics import extract_features, mutual_information_matrix
from csg_interp.training import TrainConfig, fit

torch.set_num_threads(1)
CACHE = Path(os.environ.get("CSG_INTERP_GALLERY_CACHE",
                            Path(tempfile.gettempdir()) / "csg_interp_gallery"))
VIT = dict(img_size=8, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
           class_token=False, global_pool="avg", fc_norm=False)


def tiny_vit_run(gate: bool = True):
    """The gallery's ViT run on digits (CSG or its STD twin): trained once, then loaded."""
    out = CACHE / ("vit_csg" if gate else "vit_std")
    config = TrainConfig(dataset="digits", model="timm:vit_tiny_patch16_224", model_options=VIT,
                         epochs=8, batch_size=32, optimizer="adamw", lr=3e-3, csg_lr=3e-3,
                         weight_decay=0.05, seed=0, gate=gate, out=str(out))
    try:  # a finished run of this config loads at once, a partial one resumes
        return fit(config, resume=True, progress=False)
    except ValueError:  # the cache holds a run of another config: train afresh
        shutil.rmtree(out, ignore_errors=True)
        return fit(config, progress=False)


csg, std = tiny_vit_run(gate=True), tiny_vit_run(gate=False)
data = csg.load_data()
for name, run in (("CSG", csg), ("STD", std)):
    print(f"{name} ViT: test accuracy {run.manifest['result']['test_acc']:.3f}")
gated_map = csg.net.features(data.test.tensors(torch.arange(2))[0])
print(f"gated map of the ViT: {tuple(gated_map.shape)} (N, channels, patch rows, patch columns)")

# %%
# The gate over the 32 token channels
# -----------------------------------
display = GateHeatmapDisplay.from_net(csg.net, csg.classes)
plt.show()

# %%
# Mutual information of channels and classes, CSG vs STD
# ------------------------------------------------------
matrices = {}
for name, run in (("CSG", csg), ("STD", std)):
    features, labels = extract_features(run.net, data.test, progress=False)
    matrices[name] = mutual_information_matrix(features, labels, n_jobs=1)
comparison = MIComparisonDisplay.from_matrices(matrices["CSG"], matrices["STD"], csg.classes)
print(textwrap.fill(comparison.caption, 88))
plt.show()

# %%
# Per-patch class maps (exact ``cam``)
# ------------------------------------
# One value per patch; the overlay upsamples the 2×2 grid bilinearly. The check below is the
# exactness: mean of the map + bias = the CSG-path logit of the class.
images, labels = data.test.tensors(torch.arange(6))
explainer = CSGAttribution.from_net(csg.net, mode="cam")
with torch.no_grad():
    predicted = csg.net(images).argmax(1)
    maps = explainer.attribute(images, target=predicted)
    _, csg_logits = csg.net(images, predicted)
exact = maps.mean(dim=(1, 2, 3)) + csg.net.linear_head.bias[predicted]
print("max |mean(cam) + b - CSG logit| =",
      f"{(exact - csg_logits.gather(1, predicted[:, None])[:, 0]).abs().max():.1e}")
figure, axes = plt.subplots(1, 6, figsize=(12, 2.6))
for ax, image, single_map, label, guess in zip(axes, images, maps.clamp(min=0), labels, predicted):
    AttributionOverlayDisplay.from_maps(
        image, single_map, title=f"{int(guess)} (true {int(label)})", ax=ax
    )
figure.tight_layout()
plt.show()
