"""The command line starts fast and stays layered: ``--version`` and ``--help`` import none of
the heavy libraries (torch alone took seconds), the defaults that the help shows without the
library are the library's, and each command module is registered only by
:mod:`trainfree.cli.commands`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trainfree.cli import options

HEAVY = ("torch", "numpy", "pandas", "scipy", "matplotlib", "pymoo", "plotly", "transformers", "onnx")
COMMAND_MODULES = ("bench", "calibrate", "export", "listing", "profile", "report", "search")


def _imported(*args: str) -> set[str]:
    """The modules that ``python -X importtime -m trainfree ARGS`` imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trainfree", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {parts[-1].strip() for parts in lines if len(parts) == 3}


@pytest.mark.parametrize("args", [("--version",), ("search", "--help"), ("--help",)])
def test_version_and_help_import_nothing_heavy(args):
    modules = _imported(*args)
    assert "trainfree.cli.commands" in modules  # the command line itself was imported
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"{' '.join(args)} imported {heavy[:5]}"
    registries = sorted(m for m in modules if m.startswith(("trainfree.spaces", "trainfree.proxies")))
    assert not registries, registries


def test_the_helps_defaults_are_the_librarys():
    from trainfree.search.settings import SEARCH_HARDWARE, SearchSettings

    hardware = SEARCH_HARDWARE
    assert (hardware.warmup, hardware.repeats) == (options.SEARCH_WARMUP, options.SEARCH_REPEATS)
    assert round(100 * SearchSettings.resolution, 6) == options.SEARCH_RESOLUTION_PCT


def test_commands_are_registered_in_one_place():
    """Command modules never import each other (cycles anywhere: tests/test_structure.py)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("trainfree")
    for name in COMMAND_MODULES:
        importers = graph.find_modules_that_directly_import(f"trainfree.cli.{name}")
        assert importers <= {"trainfree.cli.commands"}, f"trainfree.cli.{name} imported by {importers}"
