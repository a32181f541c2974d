"""Every command's --help fits an 80-column terminal: no line wider, `search` within 70 lines,
flags shown as flags (no `<bool>`), no second column of mostly blank negative flags, and
search's options grouped into panels."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from trainfree import cli

COMMANDS = sorted(typer.main.get_command(cli.app).commands)


def _help(*args: str) -> str:
    done = CliRunner().invoke(cli.app, [*args, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns(command):
    text = _help(*([command] if command else []))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "<bool>" not in text  # a flag takes no value
    assert not re.search(r"│\s+(\*\s+)?--[\w-]+\s{2,}--[\w-]+", text)  # no column of --no-x flags
    assert len(lines) <= 70, f"{command} --help: {len(lines)} lines"


def test_search_help_is_grouped_and_short():
    text = _help("search")
    assert len(text.splitlines()) <= 70
    for panel in ("Search", "Measurement", "Scale-out (Ray)"):
        assert f"─ {panel} ─" in text, panel
    assert "--no-cache" in text and "--max-latency-ms" not in text  # the old spelling, hidden


def test_a_typo_gets_a_suggestion(tmp_path):
    done = CliRunner().invoke(cli.app, ["search", "--space", "gtp2", "--out", str(tmp_path / "r")])
    assert done.exit_code == 2 and "did you mean gpt2?" in done.output, done.output
    done = CliRunner().invoke(cli.app, ["search", "--proxy", "zerolmm", "--out", str(tmp_path / "r")])
    assert done.exit_code == 2 and "did you mean zerolm" in done.output, done.output
    assert not (tmp_path / "r").exists()


def test_a_limit_without_unit_is_echoed_with_its_unit(tmp_path):
    out = tmp_path / "r"
    args = ["search", "--max", "latency=50", "--proxy", "nope", "--out", str(out)]
    done = CliRunner().invoke(cli.app, args)
    assert "--max latency=50: no unit given, taken as 50 ms" in done.output, done.output
    assert done.exit_code == 2 and not out.exists()  # the bad proxy: one line, nothing written
    done = CliRunner().invoke(cli.app, ["search", "--resolution", "150", "--out", str(out)])
    assert done.exit_code == 2 and "percent from 0 to 99" in done.output and not out.exists()
