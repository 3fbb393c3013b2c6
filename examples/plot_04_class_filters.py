"""
The filters of one class
========================

Which filters does the gate give a class, and what do they see? For one test digit we take the
filters whose gate value for its class is at least 0.5 (highest gate first) and overlay each
filter's activation map on the image, titled with its gate value ``G[c, k]``.
"""

# %%
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from csg_interp.attribution import ClassFiltersDisplay
from csg_interp.training import TrainConfig, fit, load_run

torch.set_num_threads(1)
CACHE = Path(os.environ.get("CSG_INTERP_GALLERY_CACHE",
                            Path(tempfile.gettempdir()) / "csg_interp_gallery"))


def tiny_run(gate: bool = True):
    """The gallery's digits run (CSG or its STD twin): trained once, then loaded."""
    out = CACHE / ("csg" if gate else "std")
    manifest = out / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("status") == "finished":
        return load_run(out)
    shutil.rmtree(out, ignore_errors=True)
    config = TrainConfig(dataset="digits", model="smallcnn", epochs=8, batch_size=32,
                         gate_lr=0.1, seed=0, gate=gate, out=str(out))
    return fit(config, progress=False)


csg = tiny_run(gate=True)
test = csg.load_data().test
index = int(torch.nonzero(test.labels == 3)[0])  # the first "3" of the test split
image, label = test[index]

# %%
display = ClassFiltersDisplay.from_net(csg.net, image, target=int(label), top=9,
                                       class_names=csg.classes)
print("filters of class", csg.classes[int(label)], "->", display.filters)
print("gate values", [round(v, 2) for v in display.gate_values])
plt.show()
