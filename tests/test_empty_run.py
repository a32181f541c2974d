"""A budget that ends before anything is evaluated: the search says so in one line and does
not claim to have written result files it did not write (found by a run on a loaded
machine: it printed "wrote .../frontier.csv" with no such file)."""

from __future__ import annotations

from typer.testing import CliRunner

from trainfree.cli import app


def test_a_budget_spent_before_any_evaluation_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINFREE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "run"
    # the budget counts from the process's start: in this test process it is long spent
    res = CliRunner().invoke(app, ["search", "--budget", "1s", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "ended before any architecture was evaluated" in res.output
    assert "wrote" not in res.output
    assert not (out / "frontier.csv").exists()
