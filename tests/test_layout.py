"""The shape of the production code, read from its source (README, "Development and tests"):
modules small or saying why not, functions short, no import cycle, and no app
reading another app's models (it asks that app's selectors)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.procs import ROOT

APPS = (
    "telemetron_site",
    "ops",
    "ingest",
    "processing",
    "stats",
    "plugins",
    "sources",
    "archive",
    "webhooks",
    "console",
)
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
LONG_REASON = "# Long: "  # the first line of a module allowed to be longer


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(tree: ast.AST, *, top_level_only: bool) -> set[str]:
    """The project modules ``tree`` imports (``from a.b import c`` is ``a.b.c``
    when that is a module, else ``a.b``)."""
    nodes = tree.body if top_level_only and isinstance(tree, ast.Module) else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name in MODULES}


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))


def test_the_layout_reads_every_app() -> None:
    assert {"ops.broker", "ingest.batcher", "processing.tasks", "stats.store"} <= set(MODULES)


def test_modules_are_small_or_say_why_not() -> None:
    long = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES and not lines[0].startswith(LONG_REASON):
            long.append(f"{name} ({len(lines)} lines)")
    assert not long, f"over {MAX_MODULE_LINES} lines without a {LONG_REASON!r} line: {long}"


def test_functions_are_short() -> None:
    long = []
    for name in MODULES:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level", "any-import"])
def test_no_import_cycle(top_level_only: bool) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        graph[name] |= _imports(_tree(name), top_level_only=top_level_only) - {name}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert _cycle(defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}})) == ["a", "b", "c", "a"]


def test_no_app_reads_another_apps_models() -> None:
    crossing = []
    for name in MODULES:
        app = name.split(".")[0]
        for target in _imports(_tree(name), top_level_only=False):
            if target.endswith(".models") and target.split(".")[0] != app:
                crossing.append(f"{name} imports {target}")
    assert not crossing, f"read through the owning app's selectors instead: {crossing}"
