"""
Boxes from class-specific maps
==============================

Weakly supervised localization turns a class map into a box: threshold the map, take the largest
connected component (OpenCV), box it. Boxes are xyxy in pixel-edge coordinates.

We need ground truth, so this example uses a tiny CSG model trained on *scenes*: a digit pasted
at a random position and scale on a 24×24 canvas, with a synthetic stroke as clutter; every scene
carries the digit's box (``load_dataset("scenes", source="digits")``, no download). The threshold
(a fraction of each map's maximum, as in Grad-CAM's protocol) is chosen on the validation scenes
and only then applied to the test scenes.
"""

# %%
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import AttributionOverlayDisplay, CSGAttribution
from csg_interp.attribution.boxes import boxes_from_maps, paired_box_iou, upsample_maps
from csg_interp.data import load_dataset
from csg_interp.training import TrainConfig, fit

torch.set_num_threads(1)
CACHE = Path(os.environ.get("CSG_INTERP_GALLERY_CACHE",
                            Path(tempfile.gettempdir()) / "csg_interp_gallery"))

scenes = load_dataset("scenes", source="digits", canvas=24, train_size=None, val_size=200,
                      test_size=200, scale=(1.5, 2.0), clutter_count=(0, 1), clutter_size=(6, 8))


def scenes_run():
    """The gallery's CSG model on digit scenes (shared with the filters example)."""
    out = CACHE / "scenes-csg"
    config = TrainConfig(dataset="scenes", model="smallcnn", epochs=10, batch_size=32,
                         gate_lr=0.1, seed=0, out=str(out))
    try:  # a finished run of this config loads at once, a partial one resumes
        return fit(config, bundle=scenes, resume=True, progress=False)
    except ValueError:  # the cache holds a run of another config: train afresh
        shutil.rmtree(out, ignore_errors=True)
        return fit(config, bundle=scenes, progress=False)


run = scenes_run()
print("test accuracy on scenes:", round(run.manifest["result"]["test_acc"], 3))

# %%
# Choose the threshold on the validation scenes
# ---------------------------------------------
explainer = CSGAttribution.from_net(run.net)


def box_iou_at(split, threshold):
    """IoU of each scene's box from its true class's map with the true box."""
    images, labels = split.tensors()
    maps = explainer.attribute(images, target=labels, relu_attributions=True)
    boxes = boxes_from_maps(upsample_maps(maps[:, 0], images.shape[-2:]), threshold=threshold,
                            mode="max_fraction").boxes
    return paired_box_iou(boxes, split.extras["boxes"].float())


thresholds = [0.15, 0.3, 0.4, 0.5, 0.6, 0.7]
val_loc = {t: float((box_iou_at(scenes.val, t) >= 0.5).float().mean()) for t in thresholds}
best = max(val_loc, key=val_loc.get)
print("validation GT-known Loc (IoU ≥ 0.5) per threshold:",
      {t: round(v, 3) for t, v in val_loc.items()})
test_iou = box_iou_at(scenes.test, best)
print(f"threshold {best}: test GT-known Loc {float((test_iou >= 0.5).float().mean()):.3f}, "
      f"mean IoU {float(test_iou.mean()):.3f}")

# %%
# Predicted boxes (solid) and true boxes (dashed) on test scenes
# --------------------------------------------------------------
images, labels = scenes.test.tensors(torch.arange(8))
maps = explainer.attribute(images, target=labels, relu_attributions=True)
predicted = boxes_from_maps(upsample_maps(maps[:, 0], images.shape[-2:]), threshold=best,
                            mode="max_fraction").boxes
figure, axes = plt.subplots(2, 4, figsize=(9, 5))
for ax, image, single_map, box, truth, iou in zip(
    axes.ravel(), images, maps, predicted, scenes.test.extras["boxes"][:8], test_iou[:8]
):
    AttributionOverlayDisplay.from_maps(image, single_map, boxes=box, true_boxes=truth,
                                        title=f"IoU {iou:.2f}", ax=ax, alpha=0.4)
figure.tight_layout()
plt.show()
