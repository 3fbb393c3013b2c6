"""Sphinx configuration: API reference from docstrings, the team's Markdown pages (MyST) and an
offline sphinx-gallery of examples that each train a tiny model on scikit-learn's digits.

Built by ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``) with no
network access: there is no ``intersphinx_mapping`` (its inventory fetch is the only network
touch, and a failed fetch is a warning, fatal under ``-W``) and no example downloads anything.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from sphinx.util import logging as sphinx_logging

sphinx_logger = sphinx_logging.getLogger("csg_interp.docs")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Examples and autodoc run on 2 shared cores: one thread each, a non-interactive backend.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "agg")
# The examples share one tiny STD/CSG pair, trained by the first example that needs it and kept
# with the build output (``make clean`` removes it).
os.environ.setdefault("CSG_INTERP_GALLERY_CACHE", str(ROOT / "docs" / "_build" / "gallery_runs"))

import csg_interp  # noqa: E402
from csg_interp.progress import set_progress  # noqa: E402

# Gallery pages show results, not progress bars (examples run in this process).
set_progress(False)

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
# Types only where a parameter is described: a dataclass's constructor would otherwise list every
# field again, typed but without its text (the class's Attributes section describes them).
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = True
# A method without its own docstring (e.g. every ``forward``) shows nothing rather than torch's
# boilerplate ``Module.forward`` text.
autodoc_inherit_docstrings = False

#: The API reference: one page per subpackage (``docs/api/<name>.rst``, written here from the
#: package's ``__all__`` at every build, so a new public name appears without editing a page).
#: Each entry: the page title and the names a reader looks for first; the rest of ``__all__``
#: follows, classes, then functions, then constants. Names outside ``__all__`` are internals and
#: are not documented.
API_PAGES: dict[str, tuple[str, list[str]]] = {
    "training": ("Training: the gate, CSGNet, configuration, trainer, run directories",
                 ["TrainConfig", "fit", "load_run", "Run", "CSGNet", "ClassSpecificGate",
                  "Trainer"]),
    "models": ("Models: backbones to wrap", ["build_backbone", "available_models"]),
    "data": ("Data sets", ["load_dataset", "DataBundle", "ArrayDataset", "available_datasets"]),
    "metrics": ("Metrics: features, mutual information, entanglement",
                ["extract_features", "mutual_information_matrix", "mi_score", "mi_ceiling",
                 "gate_from_mi", "filter_table", "evaluate_run", "compare_runs"]),
    "attribution": ("Attribution: CSGAttribution, explanations, boxes, displays",
                    ["CSGAttribution", "explain_images", "explain_run", "boxes_from_maps",
                     "localization_maps", "sanity_check", "GateHeatmapDisplay",
                     "MIComparisonDisplay", "AttributionOverlayDisplay"]),
    "applications": ("Applications: adversarial attacks and their detection",
                     ["attack", "GateConsistencyScore", "evaluate_detection", "detect_run"]),
    "plotting": ("Plotting: Display objects and figure writers",
                 ["GateHeatmapDisplay", "MIHeatmapDisplay", "GateWeightPanelsDisplay",
                  "MIComparisonDisplay", "AttributionOverlayDisplay", "plot_roc_curves"]),
    "workflows": ("Workflows: what each command does to a run directory",
                  ["evaluate_run", "EvaluateResult", "filters_run", "compare_run", "explain_run",
                   "localize_run", "detect_run", "RunResult"]),
    "report": ("Report: report.html and the figures only it draws",
               ["write_report", "load_report_data", "render_report", "plot_training_curves"]),
    "errors": ("Errors and input checks (docs/errors.md)",
               ["CSGInterpError", "InvalidParameterError", "MissingInputError",
                "OutputExistsError", "TrainingInterrupted"]),
    "progress": ("Progress bars and their switch", ["set_progress", "progress_bar"]),
}


def _api_page(package: str, title: str, first: list[str]) -> str:
    import importlib
    import inspect

    module = importlib.import_module(f"csg_interp.{package}")
    public = list(dict.fromkeys(getattr(module, "__all__", [])))
    missing = [name for name in first if name not in public]
    if missing:
        raise RuntimeError(f"docs/conf.py API_PAGES names {missing} outside csg_interp.{package}."
                           "__all__; update API_PAGES")

    def group(name: str) -> int:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            return 1
        return 2 if callable(obj) else 3

    def home(name: str) -> str | None:
        """The other API page that documents a re-exported object (one description per object)."""
        owner = str(getattr(getattr(module, name), "__module__", "") or "")
        for other in API_PAGES:
            if other != package and owner.startswith(f"csg_interp.{other}"):
                return other
        return None

    elsewhere = [name for name in public if home(name)]
    public = [name for name in public if name not in elsewhere]
    first = [name for name in first if name in public]
    ordered = first + sorted((n for n in public if n not in first), key=lambda n: (group(n), n))
    lines = [f"csg_interp.{package}", "=" * (len(package) + 11), "", f"*{title}*", "",
             f".. automodule:: csg_interp.{package}", "   :no-members:", "",
             f".. currentmodule:: csg_interp.{package}", "", ".. autosummary::",
             "   :nosignatures:", ""]
    # Constants stay out of the table: autosummary would show their type's docstring (dict's).
    lines += [f"   {name}" for name in ordered if group(name) < 3] + [""]
    if elsewhere:
        pages = sorted({home(name) for name in elsewhere})
        lines += ["Also exported here, documented on "
                  + ", ".join(f":doc:`{page}`" for page in pages) + ": "
                  + ", ".join(f"``{name}``" for name in elsewhere) + ".", ""]
    for name in ordered:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            lines += [f".. autoexception:: {name}", ""]
        elif inspect.isclass(obj):
            lines += [f".. autoclass:: {name}", "   :members:", "   :show-inheritance:", ""]
        elif callable(obj):
            lines += [f".. autofunction:: {name}", ""]
        else:
            value = repr(obj)
            value = value if len(value) <= 70 else value[:67] + "..."
            lines += [f".. py:data:: {name}", f"   :value: {value}", ""]
    return "\n".join(lines)


def _write_api_pages() -> None:
    folder = Path(__file__).resolve().parent / "api"
    folder.mkdir(exist_ok=True)
    for package, (title, first) in API_PAGES.items():
        path = folder / f"{package}.rst"
        text = _api_page(package, title, first)
        if not path.is_file() or path.read_text() != text:  # unchanged pages stay cached
            path.write_text(text)


_write_api_pages()

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


# --- The gallery shows no warnings and no machine paths ---------------------------------------
_GALLERY_LEAKS = re.compile(r"\b\w*Warning: |\d+%\||" + re.escape(str(ROOT)) + r"|/tmp/|/home/")


def _check_gallery_output(app: Any, docname: str, source: list[str]) -> None:
    """A warning (fatal under ``-W``) for an example whose captured output shows a Python warning,
    a progress bar or an absolute path of this machine: fix the example, do not filter the
    output."""
    if not docname.startswith("auto_examples/"):
        return
    for number, line in enumerate(source[0].splitlines(), 1):
        found = _GALLERY_LEAKS.search(line)
        if found:
            sphinx_logger.warning(f"gallery output shows {found.group(0).strip()!r}: "
                                  f"{line.strip()[:120]}", location=(docname, number))


def setup(app: Any) -> None:
    app.connect("source-read", _check_gallery_output)
