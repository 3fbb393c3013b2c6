"""
The filters of one class
========================

Which filters does the gate give a class, and what do they see? We take a CSG model trained on
24×24 *scenes* (a digit pasted at a random position and scale, a synthetic stroke as clutter;
``load_dataset("scenes", source="digits")``, no download) and, for one test scene, the filters
whose gate value for its class is at least 0.5 (highest gate first). Each panel overlays one
filter's activation map (6×6 at the gated layer, upsampled) on the scene, titled with its gate
value ``G[c, k]``. The boxes example reuses the same model.
"""

# %%
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import ClassFiltersDisplay
from csg_interp.data import load_dataset
from csg_interp.training import TrainConfig, fit

torch.set_num_threads(1)
CACHE = Path(os.environ.get("CSG_INTERP_GALLERY_CACHE",
                            Path(tempfile.gettempdir()) / "csg_interp_gallery"))

scenes = load_dataset("scenes", source="digits", canvas=24, train_size=None, val_size=200,
                      test_size=200, scale=(1.5, 2.0), clutter_count=(0, 1), clutter_size=(6, 8))


def scenes_run():
    """The gallery's CSG model on digit scenes: trained once, then loaded."""
    out = CACHE / "scenes-csg"
    config = TrainConfig(dataset="scenes", model="smallcnn", epochs=10, batch_size=32,
                         gate_lr=0.1, seed=0, out=str(out))
    try:  # a finished run of this config loads at once, a partial one resumes
        return fit(config, bundle=scenes, resume=True, progress=False)
    except ValueError:  # the cache holds a run of another config: train afresh
        shutil.rmtree(out, ignore_errors=True)
        return fit(config, bundle=scenes, progress=False)


run = scenes_run()
index = int(torch.nonzero(scenes.test.labels == 3)[0])  # the first "3" among the test scenes
image, label = scenes.test[index]

# %%
display = ClassFiltersDisplay.from_net(run.net, image, target=int(label), top=9,
                                       class_names=scenes.classes)
print("filters of class", scenes.classes[int(label)], "->", display.filters)
print("gate values", [round(v, 2) for v in display.gate_values])
plt.show()
