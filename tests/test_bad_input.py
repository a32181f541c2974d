"""Bad input never ends in a traceback: each case is one line on stderr, exit code 2, and
nothing is written (issue 13). Run through the real command line (``typer``'s runner), so the
one place that turns errors into that line (``cli.boundary.CommandGroup``) is what is tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trainfree import io as tfio
from trainfree.cli import app
from trainfree.errors import ConfigError
from trainfree.spaces import get_space

runner = CliRunner()
TINY = ["--set", "n_layer=[1,2]", "--set", "d_model=[64]", "--set", "d_inner=[128]"]


def one_line_error(res, *needles: str) -> str:
    """The run failed with exit 2 and exactly one line on stderr, holding every needle."""
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert ("Traceback" not in res.output and res.exception is None) or isinstance(res.exception, SystemExit)
    assert err.startswith("error:") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture()
def gpt2_config(tmp_path) -> Path:
    sp = get_space("gpt2", n_layer=[2], d_model=[64], d_inner=[128])
    path = tmp_path / "cfg.json"
    path.write_text(sp.config_to_json(sp.sample(np.random.default_rng(0))))
    return path


@pytest.fixture()
def deep_config(tmp_path) -> Path:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


# ------------------------------------------------------------------ value sets
BAD_SETS = [
    ("d_model=[[1]]", "'d_model' is [1]"),
    ("d_model=[null]", "'d_model' is None"),
    ("n_head=[0]", "'n_head' is 0"),
    ("cutoffs=[5]", "'cutoffs' is 5"),
    ("n_layer=[1000000000]", "integer in [1, 512]"),  # a genome slot per layer: refused, not allocated
    ("cutoffs=[[1,2,3,4,5,6]]", "'div_val'"),  # 7 clusters: d_embed // 4**6 has no width left
    ("tie_projs=[[1]]", "'tie_projs'"),
]


@pytest.mark.parametrize("value,needle", BAD_SETS)
def test_search_refuses_a_bad_value_set_and_writes_nothing(tmp_path, value, needle):
    out = tmp_path / "run"
    res = runner.invoke(app, ["search", "--out", str(out), "--set", value, "--objectives", "params"])
    one_line_error(res, needle)
    assert not out.exists()


@pytest.mark.parametrize("space", ["flexibert", "gpt2", "transxl"])
@pytest.mark.parametrize("bad", [[[1]], [None], [0], [-3], ["x"], [1.5], [True], [{}]])
def test_every_value_set_refuses_bad_values_with_a_config_error(space, bad):
    """Each value set of each space, each kind of bad value: a ConfigError naming the value
    set, or (where the value is a legal choice) a space whose samples work."""
    for key in get_space(space).values:
        try:
            sp = get_space(space, **{key: bad})
        except ConfigError as exc:
            assert key in str(exc) or exc.field in str(exc)
            continue
        rng = np.random.default_rng(0)
        for _ in range(3):
            cfg = sp.sample(rng)
            sp.encode(cfg)
            sp.param_counts(cfg)


def test_cutoffs_with_tiny_clusters_are_accepted_and_build():
    """``cutoffs=[[1,2]]`` is legal (archai cleaning appends n_token: clusters of 1 and 1
    tokens): the space builds and runs such models rather than failing mid-search."""
    sp = get_space("gpt2", cutoffs=[[1, 2]], n_layer=[1], d_model=[64], d_inner=[128], tgt_len=[8])
    rng = np.random.default_rng(0)
    cfg = sp.sample(rng)
    assert cfg.cutoffs == (1, 2, 50264)
    assert sp.decode(sp.encode(cfg)) == cfg  # the value set holds [1, 2], the config the cleaned form
    sp.crossover(cfg, sp.mutate(cfg, rng), rng)
    out = sp.inference(sp.build(cfg), sp.example_input(cfg, 1, 8))
    assert out.shape == (1, 8, 50264) and bool(out.isfinite().all())


def test_sample_and_calibrate_validate_value_sets_and_seeds(tmp_path):
    one_line_error(runner.invoke(app, ["sample", "--space", "gpt2", "--set", "n_head=[0]"]), "'n_head'")
    one_line_error(runner.invoke(app, ["sample", "--space", "gpt2", "--seed", "-1"]), "--seed")
    one_line_error(runner.invoke(app, ["calibrate", "--set", "d_model=[null]"]), "'d_model'")
    res = runner.invoke(app, ["sample", "--space", "gpt2", "-n", "2", *TINY])
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 2


def test_usage_errors_are_one_line():
    one_line_error(runner.invoke(app, ["sample", "--bogus"]), "--bogus")
    one_line_error(runner.invoke(app, ["search", "--out", "x", "--seed", "-1"]), "--seed")


# ------------------------------------------------------------------ config files
@pytest.mark.parametrize("command", ["info", "profile", "export"])
def test_a_config_nested_100000_deep_is_one_line(tmp_path, deep_config, command):
    args = [command, "--space", "gpt2", "--config", str(deep_config)]
    if command == "export":
        args += ["--out", str(tmp_path / "exported")]
    one_line_error(runner.invoke(app, args), str(deep_config), "nested")
    assert not (tmp_path / "exported").exists()


def test_info_refuses_more_tokens_than_positions(gpt2_config):
    res = runner.invoke(
        app, ["info", "--space", "gpt2", "--config", str(gpt2_config), "--seq-len", "99999999"]
    )
    one_line_error(res, "192 positions")


def test_profile_refuses_more_threads_than_cpus(gpt2_config):
    res = runner.invoke(
        app, ["profile", "--space", "gpt2", "--config", str(gpt2_config), "--threads", "100000"]
    )
    one_line_error(res, f"{os.cpu_count()} CPUs")


def test_out_naming_an_existing_file(tmp_path, gpt2_config, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    one_line_error(runner.invoke(app, ["search", "--out", str(afile)]), str(afile))
    res = runner.invoke(app, ["export", "--space", "gpt2", "--config", str(gpt2_config), "--out", str(afile)])
    one_line_error(res, str(afile))
    monkeypatch.setenv("TRAINFREE_CACHE", str(afile))  # calibrate's cache lives there
    one_line_error(runner.invoke(app, ["calibrate", "-n", "12", *TINY]), "hardware cache", str(afile))
    assert afile.read_text() == "keep me\n"


# ------------------------------------------------------------------ bench
@pytest.fixture()
def bert(data_dir, tmp_path):
    entries = json.loads((data_dir / "nas-bench-bert" / "BERT_benchmark.json").read_text())

    def make(n: int, scores: bool = True) -> Path:
        path = tmp_path / f"bench{n}{'' if scores else '-unscored'}.json"
        path.write_text(json.dumps([e if scores else {**e, "scores": {}} for e in entries[:n]]))
        return path

    return make


def _bench(data: Path, cache: Path, *extra: str):
    args = ["bench", "--space", "flexibert", "--proxy", "params", "--data", str(data), "--cache", str(cache)]
    return runner.invoke(app, [*args, *extra])


def test_bench_refuses_a_benchmark_without_usable_entries(bert, tmp_path):
    cache = tmp_path / "cache"
    one_line_error(_bench(bert(3, scores=False), cache), "no usable entries")
    one_line_error(_bench(bert(2), cache), "only 2 usable entries")
    assert not cache.exists()  # nothing scored


def test_bench_fit_k_says_what_k_must_be(bert, tmp_path):
    cache = tmp_path / "cache"
    one_line_error(_bench(bert(5), cache, "--alpha", "fit:5"), "needs at least 8")
    one_line_error(_bench(bert(12), cache, "--alpha", "fit:50"), "between 5 and 9")
    assert not cache.exists()


def test_bench_checks_every_output_before_scoring(bert, tmp_path):
    data, cache = bert(5), tmp_path / "cache"
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(_bench(data, cache, "--json", str(tmp_path)), "--json", "is a folder")
    one_line_error(_bench(data, cache, "--json", str(afile / "r.json")), "is a file, not a folder")
    one_line_error(_bench(data, cache, "--json", "/proc/trainfree/r.json"), "not writable")
    one_line_error(_bench(data, cache, "--report", str(afile)), "--report", "is a file")
    assert not cache.exists()
    one_line_error(_bench(data, afile), "--cache", "is a file")
    assert afile.read_text() == "x"


# ------------------------------------------------------------------ write errors
def test_a_failed_append_is_cut_back_and_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a":1}\n')
    real_write = os.write

    def half_then_full(fd, data):  # the disk fills up half-way through the write
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(tfio.WriteError, match=r"log\.jsonl: no space left.*nothing written before was lost"):
        tfio.append_text(path, '{"b":2}\n')
    monkeypatch.undo()
    assert path.read_text() == '{"a":1}\n'


def test_appends_and_writes_never_follow_a_planted_symlink(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluations.jsonl").symlink_to(outside)
    with pytest.raises(tfio.WriteError, match="symbolic link"):
        tfio.append_text(run / "evaluations.jsonl", "{}\n")
    (run / "frontier.csv").symlink_to(outside)
    tfio.atomic_write_text(run / "frontier.csv", "new\n")  # replaces the link, not what it points to
    assert outside.read_text() == "precious\n" and not (run / "frontier.csv").is_symlink()


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {res.stderr.decode().strip()}")


@pytest.mark.parametrize("size", ["8k", "40k"])
def test_a_full_disk_is_one_line_naming_the_file(tmp_path, size):
    disk = tmp_path / "disk"
    _tmpfs(disk, size)
    try:
        out = disk / "run"
        cmd = [sys.executable, "-m", "trainfree.cli", "search", "--out", str(out), "--objectives", "params"]
        cmd += [*TINY, "--set", "n_layer=[1,2,3,4]", "--set", "d_inner=[128,256,512]", "--budget", "40"]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"}
        )
        assert res.returncode == 2, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert "Traceback" not in res.stderr
        assert last.startswith("error: could not write ") and str(out) in last, last
        assert "no space left" in last and "nothing written before was lost" in last
        lines = (out / "evaluations.jsonl").read_bytes().splitlines(keepends=True)
        assert all(line.endswith(b"\n") and json.loads(line) for line in lines)  # no half line
    finally:
        subprocess.run(["umount", str(disk)], check=False)
