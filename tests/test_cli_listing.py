"""``trainfree --version``, ``spaces`` and ``proxies`` as a user sees them in an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import trainfree
from trainfree import get_space, list_spaces


def _run(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "trainfree", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert all(len(line.rstrip()) <= 80 for line in done.stdout.splitlines()), done.stdout
    return done.stdout


def test_version():
    assert _run("--version").strip() == f"trainfree {trainfree.__version__}"


def test_spaces_show_whole_descriptions_at_80_columns():
    out = " ".join(_run("spaces").split())
    for name in list_spaces():
        space = get_space(name)
        assert f"{name}: {type(space).summary()}" in out  # never cut mid-sentence
        assert space.summary().endswith(".") and "``" not in space.summary()
        if space.benchmark is not None:
            assert space.benchmark.path in out


def test_proxies_show_no_markup_at_80_columns():
    out = _run("proxies")
    assert "``" not in out and "ctx.seq_len" in " ".join(out.split()).replace("│", "")
