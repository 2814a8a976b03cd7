"""The shape of the source tree: module and function sizes, layers, import cycles, rows."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cleveragents"
#: A module a newcomer reads in one sitting; a function that fits on a screen.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
#: Which layer may import which: a layer imports only those listed (and itself).
LAYERS = {
    "domain": set(),
    "config": {"domain"},
    "infrastructure": {"domain", "config"},
    "application": {"domain", "config", "infrastructure"},
    "integrations": {"domain", "config", "infrastructure", "application"},
    "bench": {"domain", "config", "infrastructure", "application"},
    "cli": {"domain", "config", "infrastructure", "application", "bench", "integrations"},
}
#: Positional access to a row's fields (``row[8]``, ``row[_DETAILS]``, ``row[:7]``,
#: ``rows[0][2]``): the fields have names. ``rows[0].id`` is a list's item, not a field.
POSITIONAL_ROW = re.compile(r"\brow\[(?:-?\d+|_?[A-Z][A-Z0-9_]*|[^\]]*:[^\]]*)\]|\brows\[-?\d+\]\[")


def modules() -> Iterator[Path]:
    """Every Python module of the package."""
    yield from sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    """The dotted module name of ``path``."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The ``cleveragents`` modules ``path`` imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("cleveragents"):
                found.add(node.module)  # and ``from package import module``:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cleveragents"))
    return found


@pytest.mark.parametrize("path", list(modules()), ids=name_of)
def test_module_is_small(path: Path) -> None:
    """No module is longer than MAX_MODULE_LINES lines."""
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", list(modules()), ids=name_of)
def test_functions_are_short(path: Path) -> None:
    """No function, docstring included, is longer than MAX_FUNCTION_LINES lines."""
    long = [
        f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize("path", list(modules()), ids=name_of)
def test_layers_point_inwards(path: Path) -> None:
    """domain <- config <- infrastructure <- application <- cli: no import points outwards."""
    parts = name_of(path).split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        return
    allowed = LAYERS[parts[1]] | {parts[1]}
    outward = sorted(
        imported
        for imported in imports_of(path)
        if len(imported.split(".")) > 1
        and imported.split(".")[1] in LAYERS
        and imported.split(".")[1] not in allowed
    )
    assert outward == []


def test_no_import_cycles() -> None:
    """No module imports, directly or through others, a module that imports it back."""
    names = {name_of(path): path for path in modules()}
    graph = {
        name: {imported for imported in imports_of(path) if imported in names and imported != name}
        for name, path in names.items()
    }
    # A package's __init__ re-exporting its modules is not a cycle of theirs.
    graph = {
        name: {i for i in edges if not (i == name.rpartition(".")[0] or name.startswith(i + "."))}
        for name, edges in graph.items()
    }
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for imported in sorted(graph[name]):
            if imported in on_path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                visit(imported, [*path, imported], on_path | {imported}, done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], {name}, done)
    assert cycles == []


@pytest.mark.parametrize("path", list(modules()), ids=name_of)
def test_rows_are_read_by_name(path: Path) -> None:
    """Outside domain/rows.py, no code reads a row's fields by position."""
    if path == PACKAGE / "domain" / "rows.py":
        return
    positional = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if POSITIONAL_ROW.search(line)
    ]
    assert positional == []
