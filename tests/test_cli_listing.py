"""``trainfree --version``, ``spaces`` and ``proxies`` as a user sees them in an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

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


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and subcommand of the CLI, with the words that invoke it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _option_rows(help_text: str, names: set[str]) -> dict[str, str]:
    """Each option's row of a rich help panel (its wrapped lines joined), by its first name:
    a row starts where one of ``names`` stands in the name columns (not in a wrapped help)."""
    rows: dict[str, str] = {}
    name = None
    for line in help_text.splitlines():
        tokens = line.strip("│ ").split()
        if tokens and tokens[0] == "*":
            tokens = tokens[1:]
        body = line[1:]
        if tokens and tokens[0] in names and len(body) - len(body.lstrip()) < 20:
            name = tokens[0]
        if name and line.startswith("│"):
            rows[name] = rows.get(name, "") + " " + " ".join(tokens)
    return rows


def test_every_help_fits_80_columns_whole_with_its_defaults():
    """`--help` of every command at 80 columns: no line wider, nothing cut (rich's `…`, or
    markup such as `[v1,v2]` swallowing a help text), every default shown, and no sentence
    broken where the source docstring was wrapped."""
    from rich.text import Text
    from typer.main import get_command
    from typer.testing import CliRunner

    from trainfree.cli import app

    found = list(_commands(get_command(app)))
    assert {"bench", "search", "calibrate", "profile", "export", "spaces", "proxies"} <= {
        p[-1] for p, _ in found if p
    }
    for path, command in found:
        res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        where = " ".join(("trainfree", *path, "--help"))
        assert res.exit_code == 0, f"{where}: {res.output}"
        wide = [line for line in res.output.splitlines() if len(line) > 80]
        assert not wide, f"{where}: lines over 80 columns: {wide}"
        assert "…" not in res.output, f"{where} cuts a text:\n{res.output}"
        for paragraph in (command.help or "").split("\n\n")[1:]:  # rich mode keeps its line breaks
            assert "\n" not in paragraph or paragraph.startswith("\b"), f"{where}: {paragraph!r}"
        words = set(res.output.replace("│", " ").split())
        # hidden options (search's old --max-latency-ms spelling) are accepted, not shown
        params = [p for p in command.params if getattr(p, "help", None) and not getattr(p, "hidden", False)]
        for text in [command.help or "", *(p.help for p in params)]:
            assert Text.from_markup(text).plain == text, f"{where}: rich markup eats part of {text!r}"
            missing = set(text.split()) - words
            assert not missing, f"{where}: {missing} of {text!r} not shown"
        rows = _option_rows(res.output, {o for p in command.params for o in getattr(p, "opts", [])})
        for p in command.params:
            if getattr(p, "hidden", False):
                continue
            if getattr(p, "opts", None) and p.default not in (None, False) and not p.required:
                assert "[default:" in rows.get(p.opts[0], ""), f"{where}: {p.opts[0]} hides its default"
    bench = dict(found)[("bench",)]
    for name in ("target", "workers", "seq_len", "batch_size", "cache"):  # defaults that are no value
        param = next(p for p in bench.params if p.name == name)
        assert "default" in param.help, f"bench --{name} does not say its default"
    assert "all" in next(p for p in bench.params if p.name == "proxy").help


def test_spaces_and_proxies_cut_nothing_at_80_columns():
    for command in ("spaces", "proxies"):
        assert "…" not in _run(command), command
