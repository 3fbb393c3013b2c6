"""The README's and the docs' Python examples, run so that they cannot rot.

Every ```python block of ``README.md`` and of the pages in :data:`RUN_WHOLE` runs as written, in
a fresh working directory (their ``runs/...`` folders land there), the blocks of one page in one
namespace and in order. The other pages hold fragments that continue a reader's session (``net``,
``bundle``, ``run`` are the reader's own): their blocks must compile and every ``import`` in them
must resolve, so a renamed function breaks this test too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Pages whose Python blocks are complete programs (digits, a few epochs: seconds each).
RUN_WHOLE = ("README.md", "docs/getting-started.md", "docs/training.md")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[str]:
    """The ```python fenced blocks of a Markdown file, in order."""
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def _pages() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
                  if python_blocks(p)) + ["README.md"]


def test_python_blocks_are_found_by_hand():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    page = ROOT / "README.md"
    assert _BLOCK.findall(text) == ["x = 1\n", "y = 2\n"]
    assert python_blocks(page), "README.md lost its Python API example"


@pytest.mark.parametrize("page", RUN_WHOLE)
def test_complete_examples_run_as_written(page, tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no ```python block"
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions on a shared 2-core machine
    namespace: dict = {"__name__": "__docs_example__"}
    try:
        for number, block in enumerate(blocks, 1):
            code = compile(block, f"{page} (python block {number})", "exec")
            exec(code, namespace)  # noqa: S102 - the repository's own documentation
    finally:
        torch.set_num_threads(threads)
        plt.close("all")
    if page == "README.md":
        # The example's names hold what its comments say.
        images, labels, maps = namespace["images"], namespace["labels"], namespace["maps"]
        assert images.dtype == torch.float32 and 0.0 <= float(images.min()) <= float(images.max()) <= 1.0
        assert labels.shape == (images.shape[0],)
        assert maps.shape[:2] == (8, 1)
        assert namespace["std_logits"].shape == namespace["csg_logits"].shape == (len(labels), 10)
        assert torch.equal(namespace["logits"], namespace["std_logits"])
        assert namespace["features"].shape == (len(labels), namespace["run"].net.num_filters)


@pytest.mark.parametrize("page", [p for p in _pages() if p not in RUN_WHOLE])
def test_fragments_compile_and_their_imports_resolve(page):
    for number, block in enumerate(python_blocks(ROOT / page), 1):
        tree = ast.parse(block, f"{page} (python block {number})")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = compile(ast.Module([node], []), page, "exec")
                exec(statement, {})  # noqa: S102 - an import line of the repository's docs
