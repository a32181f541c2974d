"""The code's shape, held by tests: no import cycles, the layering contracts, sizes, a fast start.

Why: a newcomer should understand the package in an afternoon (docs/architecture.md), and the
next capability should be an addition, not edits across the tree. The layers themselves are
the import-linter contracts in pyproject.toml; this file runs them, finds cycles between
modules (which a layers contract does not forbid inside one package) and holds the sizes.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "trainfree"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
#: functions whose length is a table (one entry per line), not logic
TABLES: set[str] = set()
#: data written by a script, not code anyone edits (benchmarks/balance_priors.py --write)
GENERATED = {"proxies/transferred.py"}


def _import_cycles() -> list[list[str]]:
    """Strongly connected components of the module import graph with more than one module."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("trainfree")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others():
    assert _import_cycles() == []


def test_the_layering_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([lint], capture_output=True, text=True, cwd=SOURCE.parents[1], timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def _function_lengths(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            if has_docstring and len(body) > 1:
                body = body[1:]
            yield node.name, node.end_lineno - body[0].lineno + 1


def test_no_source_file_is_over_400_lines():
    lines = {str(p.relative_to(SOURCE)): len(p.read_text().splitlines()) for p in SOURCE.rglob("*.py")}
    long = {name: n for name, n in lines.items() if n > MAX_FILE_LINES and name not in GENERATED}
    assert long == {}


def test_no_function_body_is_over_60_lines():
    long = [
        f"{path.relative_to(SOURCE)}:{name} ({lines})"
        for path in sorted(SOURCE.rglob("*.py"))
        for name, lines in _function_lengths(path)
        if lines > MAX_FUNCTION_LINES and name not in TABLES
    ]
    assert long == []


@pytest.mark.parametrize("module", ["trainfree", "trainfree.objectives", "trainfree.cli"])
def test_the_command_line_foundations_import_no_torch(module):
    """`trainfree --version` and `search --help` must start in well under a second."""
    heavy = "('torch', 'pandas', 'pymoo', 'transformers')"
    code = f"import sys, {module}; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
