"""Run the docstring examples of the modules whose examples are self-contained."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "csg_interp.training.gate",
    "csg_interp.training.network",
    "csg_interp.models",
    "csg_interp.errors",
    "csg_interp.progress",
    "csg_interp.training.interrupt",
    "csg_interp.report.tables",
    "csg_interp.report.figures",
    "csg_interp.report.html",
    "csg_interp._utils.formatting",
    "csg_interp.metrics.intervals",
    "csg_interp.attribution.localization",
    "csg_interp.workflows.localize",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
