"""The codebase's shape holds: no import cycles, and the faces do not reach around the application layer.

The modules are read from the source folders (escr/, and pipelines/ as escr.pipelines) rather than
imported, so an import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"escr": REPO / "escr", "escr.pipelines": REPO / "pipelines", "escr.config": REPO / "config"}


def _modules() -> dict[str, Path]:
    found = {}
    for prefix, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """escr modules imported anywhere in the file (functions included; `if TYPE_CHECKING:` left out)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    # `import a.b.c` imports a.b.c itself; a package's __init__ is not an edge worth a cycle.
    return {name for name in names if name in modules and modules[name].name != "__init__.py"}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_there_are_no_import_cycles_counting_imports_inside_functions():
    sorter = graphlib.TopologicalSorter(_graph())
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_faces_never_touch_the_database_or_the_orm_directly():
    """The web pages, the API and the CLI parse input, call escr.app, and render: no queries of their own."""
    graph = _graph()
    faces = [name for name in graph if name.startswith(("escr.web", "escr.cli"))]
    assert faces
    for name in faces:
        reached = graph[name] & {"escr.record.models", "escr.record.database"}
        assert not reached, f"{name} imports {sorted(reached)}: go through escr.app"
        source = _modules()[name].read_text()
        assert "select(" not in source, f"{name} builds its own query"


def test_no_document_or_paper_state_is_spelt_as_a_string_outside_its_module():
    """A renamed state must not leave a template or a module comparing against the old spelling."""
    import re

    from escr.record.states import DocumentState, PaperState

    values = "|".join(s.value for s in (*DocumentState, *PaperState))
    spelt = re.compile(rf"""state\W*\s*(==|!=|\bin\b)\s*\(?\s*["']({values})["']""")
    offenders = []
    for path in [*(REPO / "escr").rglob("*.py"), *(REPO / "escr").rglob("*.html"), *(REPO / "pipelines").rglob("*.py")]:
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if spelt.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}")
    assert offenders == []
