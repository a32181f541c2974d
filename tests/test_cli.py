"""The CLI contract other tools rely on: ``bench --json`` layout, ``sample``, ``spaces``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trainfree import cli
from trainfree.cli import app
from trainfree.spaces import get_space

runner = CliRunner()
cli.console.width = 200  # tables are asserted on; keep rich from wrapping them at 80 columns
cli.err_console.width = 200


def test_bench_json_contract(data_dir, tmp_path):
    out = tmp_path / "res.json"
    data = data_dir / "lts" / "random_GPT2_wt103"
    res = runner.invoke(
        app,
        [
            "bench",
            "--space",
            "gpt2",
            "--data",
            str(data),
            "--proxy",
            "decoder_params",
            "--proxy",
            "params",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "decoder_params" in res.stdout and "Spearman" in res.stdout
    payload = json.loads(out.read_text())
    assert payload["space"] == "gpt2" and payload["n"] == 200 and payload["data"] == str(data)
    dp = payload["proxies"]["decoder_params"]
    for key in (
        "spearman",
        "kendall",
        "n",
        "seconds_per_arch",
        "spearman_ci",
        "kendall_ci",
        "top10_precision",
    ):
        assert key in dp
    assert dp["n"] == 200
    assert dp["spearman"] == pytest.approx(0.967, abs=5e-4)
    assert dp["kendall"] == pytest.approx(0.847, abs=5e-4)
    assert payload["proxies"]["params"]["spearman"] == pytest.approx(0.737, abs=5e-4)


def test_bench_errors_are_specific(data_dir, tmp_path):
    res = runner.invoke(app, ["bench", "--space", "gpt2", "--proxy", "nonsense"])
    assert res.exit_code == 2 and "unknown proxy 'nonsense'" in res.output
    res = runner.invoke(app, ["bench", "--space", "gpt9", "--proxy", "params"])
    assert res.exit_code == 2 and "unknown search space 'gpt9'" in res.output
    res = runner.invoke(app, ["bench", "--space", "gpt2", "--proxy", "params", "--data", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no such file" in res.output
    # an earlier result is not overwritten by a failed run
    out = tmp_path / "keep.json"
    out.write_text("{}")
    res = runner.invoke(
        app,
        ["bench", "--space", "gpt2", "--proxy", "params", "--data", str(tmp_path / "x"), "--json", str(out)],
    )
    assert res.exit_code == 2 and out.read_text() == "{}"


@pytest.mark.parametrize("space", ["flexibert", "gpt2", "transxl"])
def test_sample_prints_valid_json_lines(space):
    res = runner.invoke(app, ["sample", "--space", space, "-n", "3", "--seed", "7"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    sp = get_space(space)
    configs = [sp.config_from_dict(json.loads(line)) for line in lines]
    again = runner.invoke(app, ["sample", "--space", space, "-n", "3", "--seed", "7"]).stdout
    assert again == res.stdout  # seeded
    assert len(set(configs)) > 1


def test_spaces_and_proxies_listings():
    res = runner.invoke(app, ["spaces"])
    assert res.exit_code == 0
    for name in ("flexibert", "flexibert-published", "gpt2", "transxl", "d_model"):
        assert name in res.stdout
    res = runner.invoke(app, ["proxies"])
    assert res.exit_code == 0 and "decoder_params" in res.stdout


def test_info_reports_counts_and_rejects_bad_config(tmp_path):
    sp = get_space("gpt2")
    import numpy as np

    cfg = sp.sample(np.random.default_rng(0))
    f = tmp_path / "c.json"
    f.write_text(sp.config_to_json(cfg))
    res = runner.invoke(app, ["info", "--space", "gpt2", "--config", str(f)])
    assert res.exit_code == 0, res.output
    assert f"{sp.param_counts(cfg).total:,}" in res.stdout
    bad = sp.config_to_dict(cfg)
    bad["d_model"] = -3
    f.write_text(json.dumps(bad))
    res = runner.invoke(app, ["info", "--space", "gpt2", "--config", str(f)])
    assert res.exit_code == 2 and "d_model" in res.output
