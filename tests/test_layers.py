"""The package's layering (docs/architecture.md): every import of every module, lazy ones
included, points to the same or a lower layer, except the listed re-exports; no import cycle;
every command module holds only its options and a short ``run``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "csg_interp"

#: Bottom to top. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("<root>", "_utils", "errors", "progress"),
    ("models", "data"),
    ("training",),
    ("metrics",),
    ("attribution",),
    ("applications",),
    ("plotting",),
    ("workflows",),
    ("report",),
    ("demo",),
    ("commands", "cli", "__main__"),
]

#: The listed exceptions: upward imports that exist only to keep old import paths working,
#: each resolved lazily (inside a function or a module ``__getattr__``).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # The design's promise: `from csg_interp.attribution import GateHeatmapDisplay` works.
    ("csg_interp.attribution", "csg_interp.plotting"): "Display names",
    ("csg_interp.attribution.displays", "csg_interp.plotting.displays"): "Display names",
    # Names that moved to the workflows / plotting layers, kept importable from their old home.
    ("csg_interp.metrics.runs", "csg_interp.workflows.evaluate"): "evaluate_run, load_metrics",
    ("csg_interp.metrics.runs", "csg_interp.workflows.filters"): "run_filter_table",
    ("csg_interp.metrics.runs", "csg_interp.workflows.compare"): "compare_runs",
    ("csg_interp.attribution.explain", "csg_interp.workflows.explain"): "explain_run, writer",
    ("csg_interp.applications.pipeline", "csg_interp.workflows.detect"): "detect_run",
    ("csg_interp.applications.pipeline", "csg_interp.plotting.colors"): "SCORE_COLORS",
    ("csg_interp.applications", "csg_interp.plotting"): "plot_roc_curves",
    ("csg_interp.applications.plots", "csg_interp.plotting.roc"): "plot_roc_curves",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Every csg_interp module ``name`` imports, at module level or inside functions."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("csg_interp"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("csg_interp"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    found.discard(name)
    return found


GRAPH: dict[str, set[str]] = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> int:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "<root>"
    for level, members in enumerate(LAYERS):
        if top in members:
            return level
    raise AssertionError(f"{name} is in no layer; add its package to LAYERS (docs/architecture.md)")


def test_every_module_is_in_a_layer_and_every_import_resolves():
    for name, targets in GRAPH.items():
        _layer(name)
        unknown = sorted(t for t in targets if t not in MODULES)
        assert not unknown, f"{name} imports {unknown}, which are not modules of csg_interp"


def test_imports_point_down_except_the_listed_re_exports():
    upward = sorted(
        (name, target)
        for name, targets in GRAPH.items()
        for target in targets
        if _layer(target) > _layer(name) and (name, target) not in ALLOWED_UPWARD
    )
    assert not upward, "imports of a higher layer:\n" + "\n".join(f"{a} -> {b}" for a, b in upward)


def test_every_listed_exception_is_still_needed():
    stale = [pair for pair in ALLOWED_UPWARD if pair[1] not in GRAPH.get(pair[0], set())]
    assert not stale, f"listed re-exports no longer imported (drop them from the list): {stale}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    # The listed re-exports point back up on purpose (lazily); every other edge counts.
    graph = {
        name: {t for t in targets if (name, t) not in ALLOWED_UPWARD and t in MODULES}
        for name, targets in GRAPH.items()
    }
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


COMMANDS = sorted(
    p.stem for p in (ROOT / "commands").glob("*.py") if "\nHELP = " in p.read_text()
)


def _is_option_function(name: str) -> bool:
    return name == "add_arguments" or (name.startswith("add_") and name.endswith("_arguments"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_module_holds_only_its_options_and_a_short_run(command):
    tree = ast.parse((ROOT / "commands" / f"{command}.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    extra = sorted(n for n in functions if n != "run" and not _is_option_function(n))
    assert not extra, f"commands/{command}.py defines {extra}; move them to a workflow"
    assigned = sorted(
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    )
    assert assigned == ["HELP"], f"commands/{command}.py assigns {assigned}; only HELP belongs here"
    assert "add_arguments" in functions and "run" in functions
    run = functions["run"]
    length = run.end_lineno - run.lineno + 1
    assert length <= 25, f"commands/{command}.py: run is {length} lines; call one workflow instead"


def test_the_command_check_sees_a_fat_command():
    fat = ast.parse("HELP = 'x'\ndef add_arguments(p): pass\ndef run(a): pass\ndef helper(): pass\n")
    names = [n.name for n in fat.body if isinstance(n, ast.FunctionDef)]
    assert [n for n in names if n != "run" and not _is_option_function(n)] == ["helper"]
    assert len(COMMANDS) >= 10 and "evaluate" in COMMANDS and "run_args" not in COMMANDS
