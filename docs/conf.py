"""Sphinx configuration: API reference from docstrings, the team's Markdown pages (MyST) and an
offline sphinx-gallery of examples that each train a tiny model on scikit-learn's digits.

Built by ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``) with no
network access: there is no ``intersphinx_mapping`` (its inventory fetch is the only network
touch, and a failed fetch is a warning, fatal under ``-W``) and no example downloads anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Examples and autodoc run on 2 shared cores: one thread each, a non-interactive backend.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "agg")
# The examples share one tiny STD/CSG pair, trained by the first example that needs it and kept
# with the build output (``make clean`` removes it).
os.environ.setdefault("CSG_INTERP_GALLERY_CACHE", str(ROOT / "docs" / "_build" / "gallery_runs"))

import csg_interp  # noqa: E402

project = "csg_interp"
author = "the csg_interp developers"
copyright = "2026, the csg_interp developers"
release = csg_interp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "**/README.md"]
templates_path: list[str] = []

# --- API reference (Google-style docstrings: Args / Returns / Raises / Example) ---------------
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = True

# --- Markdown pages written by the team -------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# --- Gallery: examples/plot_*.py, each trains a tiny model on digits in seconds ---------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "min_reported_time": 1,
    "write_computation_times": False,
}

# --- HTML: the bundled theme, no external assets ----------------------------------------------
html_theme = "alabaster"
html_title = f"csg_interp {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Class-specific gates for CNNs",
    "fixed_sidebar": True,
    "page_width": "1280px",
    "body_max_width": "none",
}
