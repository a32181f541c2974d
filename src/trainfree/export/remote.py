"""Generate the self-contained ``modeling_trainfree.py`` written beside exported weights.

``trust_remote_code=True`` must load a folder on a machine without trainfree, so the file
may import only ``torch``, ``transformers`` and the standard library. Rather than keep a
second copy of the models (which would drift from the searched ones), the file is generated
from trainfree's own source: starting from the config and model classes of a family
(:data:`trainfree.export.families.FAMILIES`), every module-level name they use is followed
to its definition, trainfree imports included, and the defining statements are copied
verbatim, dependencies first. Third-party imports are kept as import lines. The result is
one source of truth: a change to ``spaces/gpt2.py`` changes the next export.

Two different objects with the same name in the closure (e.g. two ``Block`` classes) cannot
share one file; that raises :class:`RemoteCodeError` instead of writing a wrong file.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from trainfree._version import __version__
from trainfree.errors import TrainfreeError
from trainfree.export.families import FAMILIES, auto_map
from trainfree.export.hf_config import REMOTE_MODULE
from trainfree.io import atomic_write_json, atomic_write_text


class RemoteCodeError(TrainfreeError):
    """The model code cannot be collected into one self-contained file."""


_PACKAGE = "trainfree"


def _parse(module: ModuleType, cache: dict[str, tuple[str, ast.Module]]) -> tuple[str, ast.Module]:
    if module.__name__ not in cache:
        src = inspect.getsource(module)
        cache[module.__name__] = (src, ast.parse(src))
    return cache[module.__name__]


def _definition(tree: ast.Module, name: str) -> ast.stmt | None:
    """The top-level statement that binds ``name`` (the last one, as Python keeps it)."""
    found = None
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
            found = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name:
                    found = stmt
        elif isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                found = stmt
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
            found = stmt
    return found


def _used_names(stmt: ast.stmt) -> list[str]:
    """Names a statement reads (annotations included: harmless, and safe if evaluated)."""
    seen: dict[str, None] = {}
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            seen.setdefault(node.id)
    return list(seen)


def _segment(src: str, stmt: ast.stmt) -> str:
    lines = src.splitlines()
    start = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    return "\n".join(lines[start - 1 : stmt.end_lineno])


class _Collector:
    """Walks the dependency closure of some roots, in definition order (post-order)."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, ast.Module]] = {}
        self.visited: set[tuple[str, str]] = set()
        self.bound: dict[str, tuple[str, Any]] = {}  # output name -> (origin module, object)
        self.imports: dict[str, None] = {}
        self.blocks: list[tuple[str, str]] = []  # (origin module, source)

    def need(self, name: str, module: ModuleType) -> None:
        key = (module.__name__, name)
        if key in self.visited:
            return
        self.visited.add(key)
        if name not in vars(module):
            if hasattr(builtins, name):
                return
            return  # a local variable or comprehension target, not a global
        src, tree = _parse(module, self.sources)
        stmt = _definition(tree, name)
        if stmt is None:
            raise RemoteCodeError(f"cannot find the definition of '{name}' in {module.__name__}")
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._import(stmt, name, module)
            return
        obj = vars(module)[name]
        if name in self.bound and self.bound[name][1] is not obj:
            raise RemoteCodeError(
                f"two definitions named '{name}' ({self.bound[name][0]} and {module.__name__}) "
                "cannot share one modeling file; rename one of them"
            )
        self.bound[name] = (module.__name__, obj)
        for dep in _used_names(stmt):
            if dep != name:
                self.need(dep, module)
        self.blocks.append((module.__name__, _segment(src, stmt)))

    def _import(self, stmt: ast.Import | ast.ImportFrom, name: str, module: ModuleType) -> None:
        alias = next(a for a in stmt.names if (a.asname or a.name.split(".")[0]) == name)
        if isinstance(stmt, ast.ImportFrom):
            if stmt.module == "__future__":
                return
            target = importlib.util.resolve_name("." * stmt.level + (stmt.module or ""), module.__package__)
            if target.split(".")[0] == _PACKAGE:
                if alias.asname and alias.asname != alias.name:
                    raise RemoteCodeError(f"{module.__name__}: aliased trainfree import of '{alias.name}'")
                self.need(alias.name, importlib.import_module(target))
                return
            line = f"from {target} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        else:
            if alias.name.split(".")[0] == _PACKAGE:
                raise RemoteCodeError(f"{module.__name__}: module import of {alias.name} cannot be inlined")
            line = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        self.imports.setdefault(line)


def modeling_source(model_type: str) -> str:
    """The text of ``modeling_trainfree.py`` for one family (``trainfree-gpt2``...): a family
    declared by a module that is imported (``import trainfree.export.hf_model`` imports them all)."""
    config_class, models = FAMILIES[model_type]
    collector = _Collector()
    for cls in (config_class, *models.values()):
        collector.need(cls.__name__, sys.modules[cls.__module__])
    imports = sorted(collector.imports, key=lambda s: (s.startswith("from "), s))
    parts = [
        f'"""Model code of a ``{model_type}`` checkpoint, generated by trainfree {__version__}.\n\n'
        "Copied verbatim from trainfree's sources (listed above each block) so that\n"
        "``trust_remote_code=True`` loads this folder without trainfree installed. Do not edit:\n"
        'export the architecture again with ``trainfree export`` instead."""',
        "from __future__ import annotations",
        "\n".join(imports),
    ]
    previous = None
    for origin, block in collector.blocks:
        header = f"# ---- from {origin}\n" if origin != previous else ""
        parts.append(header + block)
        previous = origin
    return "\n\n\n".join(parts) + "\n"


def write_remote_code(folder: str | os.PathLike, model_type: str) -> Path:
    """Write ``modeling_trainfree.py`` for ``model_type`` into ``folder`` and make sure the
    folder's ``config.json`` (if any) points ``auto_map`` at it, so that a model created with
    ``from_config`` and saved by trainfree's classes also loads with ``trust_remote_code``."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if config_path.exists():
        data = json.loads(config_path.read_text())
        if data.get("auto_map") != auto_map(model_type):
            data["auto_map"] = auto_map(model_type)
            atomic_write_json(config_path, data)
    return atomic_write_text(folder / f"{REMOTE_MODULE}.py", modeling_source(model_type))
