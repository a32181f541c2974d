"""The fault probe's findings on a run folder (issue 30), one test per class of case: nothing
outside the run is read, cut or deleted through a symbolic link, a folder that is not a run
is never written, a FIFO never hangs a reader, a replayed record cannot ask for more than a
run may hold, and a record of the wrong shape is one warning, never a traceback. Each test
failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainfree.cli import app
from trainfree.hardware import HardwareSettings
from trainfree.search import SearchRun, SearchSettings

runner = CliRunner()
TINY = {"n_layer": [1, 2, 3], "d_model": [64, 128], "d_inner": [128, 256], "d_embed": [-1], "div_val": [1]}
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={json.dumps(v)}")]


def one_line_error(res, *needles: str) -> str:
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert err.startswith("error:") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny run (analytic costs, 8 architectures, one generation)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    s = SearchSettings(
        space="gpt2",
        space_values=TINY,
        objectives=["params"],
        budget="8",
        pop_size=8,
        workers=1,
        hardware=HardwareSettings(seq_len=32, warmup=0, repeats=1),
        use_cache=False,
    )
    run = SearchRun.open(out, s)
    try:
        run.run()
    finally:
        run.close()
    return out


@pytest.fixture()
def run_dir(finished, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out, symlinks=True)
    return out


def resume(out: Path, *extra: str):
    return runner.invoke(app, ["search", "--resume", "--out", str(out), *extra])


def in_time(fn, seconds: float = 20.0):
    """``fn()``'s result or exception, failing the test if it has not returned in time (a
    reader blocked on a FIFO never would)."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ------------------------------------------------------------------ item 1: symlinked logs
@pytest.mark.parametrize("name", ["evaluations.jsonl", "generations.jsonl"])
def test_a_symlinked_log_is_refused_and_its_target_not_cut(run_dir, tmp_path, name):
    victim = tmp_path / "v.txt"
    victim.write_bytes(b"keep\nlast")  # no final newline: what the trim would cut
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(victim)
    one_line_error(resume(run_dir), name, "symbolic link")
    assert victim.read_bytes() == b"keep\nlast"


def test_the_cut_last_line_is_trimmed_only_under_the_lock(run_dir, monkeypatch):
    """A second process must not cut the file of a run that another one holds."""
    from trainfree.search.state import RunLock

    path = run_dir / "evaluations.jsonl"
    path.write_bytes(path.read_bytes() + b'{"key": "half')
    before = path.read_bytes()
    holder = RunLock(run_dir).acquire()
    try:
        one_line_error(resume(run_dir), "in use by another trainfree search")
    finally:
        holder.release()
    assert path.read_bytes() == before


# ------------------------------------------------------------------ item 2: symlinked configs/
def test_a_symlinked_configs_folder_is_not_cleaned(run_dir, tmp_path):
    outside = tmp_path / "d"
    outside.mkdir()
    (outside / ".notes.tmp").write_text("mine")
    shutil.rmtree(run_dir / "configs")
    (run_dir / "configs").symlink_to(outside)
    res = resume(run_dir)  # a finished run: reprinted, nothing cleaned or written
    assert res.exit_code == 0, res.output
    assert (outside / ".notes.tmp").read_text() == "mine"
    res = resume(run_dir, "--budget", "12")  # continued: its outputs are written, not through the link
    assert res.exit_code == 0, res.output
    assert [p.name for p in outside.iterdir()] == [".notes.tmp"]
    assert (outside / ".notes.tmp").read_text() == "mine"
    assert (run_dir / "configs").is_dir() and not (run_dir / "configs").is_symlink()


# ------------------------------------------------------------------ item 3: a folder that is no run
def test_a_folder_that_is_not_a_run_is_refused_and_untouched(tmp_path):
    d = tmp_path / "D"
    (d / "configs").mkdir(parents=True)
    for name in (".draft.tmp", "configs/frontier_notes.json", "evaluated.csv"):
        (d / name).write_text("mine")
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    res = runner.invoke(app, ["search", "--out", str(d), *SETS, "--objectives", "params", "--budget", "8"])
    one_line_error(res, "not empty", "no search run")
    assert sorted(p.relative_to(d) for p in d.rglob("*")) == before
    assert all((d / n).read_text() == "mine" for n in (".draft.tmp", "evaluated.csv"))


def test_an_empty_folder_is_a_new_run(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    res = runner.invoke(
        app, ["search", "--out", str(d), *SETS, "--objectives", "params", "--budget", "4", "--pop-size", "4"]
    )
    assert res.exit_code == 0, res.output
    assert (d / "settings.json").is_file()


# ------------------------------------------------------------------ item 8: hangs
def test_a_replayed_pop_size_of_ten_million_is_bounded(run_dir):
    path = run_dir / "generations.jsonl"
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    last["pop_size"] = 10_000_000
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    t0 = time.monotonic()
    res = resume(run_dir, "--budget", "12")
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 60
    assert "pop_size" in res.stderr
    assert json.loads(path.read_text().splitlines()[-1])["pop_size"] == 8  # what the resume ran with


@pytest.mark.parametrize("name", ["evaluations.jsonl", "generations.jsonl"])
def test_a_fifo_in_place_of_a_log_is_refused_at_once(run_dir, name):
    (run_dir / name).unlink()
    os.mkfifo(run_dir / name)
    res = in_time(lambda: resume(run_dir))
    one_line_error(res, name, "FIFO")


def test_a_fifo_or_deep_entry_in_the_score_cache_is_recomputed(tmp_path):
    import numpy as np

    from trainfree.proxies import get_proxy
    from trainfree.runtime.score_cache import ScoreCache
    from trainfree.spaces import get_space

    sp = get_space("gpt2", **TINY)
    cache = ScoreCache(tmp_path / "cache")
    specs = [
        cache.spec(sp, sp.sample(np.random.default_rng(i)), get_proxy("params"), 0, 32, 1, None)
        for i in range(2)
    ]
    fifo, deep = (cache.path(s) for s in specs)
    for p in (fifo, deep):
        p.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert in_time(lambda: [cache.get(s) for s in specs]) == [None, None]
    assert cache.invalid == 2
    cache.put(specs[0], 1.0, 0.1)  # the recomputed score replaces the FIFO
    assert cache.get(specs[0]).value == 1.0


# ------------------------------------------------------------------ item 11: records of the wrong shape
def _edit_first(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    rec = json.loads(lines[0])
    change(rec)
    path.write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")


BAD_RECORDS = {
    "string index": lambda r: r.update(index="3"),
    "missing config": lambda r: r.pop("config"),
    "config of another shape": lambda r: r.update(config={"n_layer": "many"}),
    "a list as a record": lambda r: (r.clear(), r.update(key=["x"])),
    "score as text": lambda r: r.update(components={"ffn_sum": "high"}),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_wrong_evaluation_record_is_skipped_with_a_warning(run_dir, case):
    _edit_first(run_dir / "evaluations.jsonl", BAD_RECORDS[case])
    res = resume(run_dir)
    assert res.exit_code == 0, res.output
    assert "evaluations.jsonl: line 1: unreadable" in res.stderr


BAD_ENTRIES = {
    "F of the wrong shape": lambda e: e.update(F=[[1.0]]),
    "F with a string": lambda e: e.update(F=[["x", 1] for _ in e["keys"]]),
    "keys not strings": lambda e: e.update(keys=[1] * len(e["keys"])),
    "norm of the wrong width": lambda e: e.update(norm=[[0.0], [1.0]]),
    "generation as text": lambda e: e.update(generation="0"),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_a_wrong_generation_entry_ends_the_replay_with_a_warning(run_dir, case):
    _edit_first(run_dir / "generations.jsonl", BAD_ENTRIES[case])
    res = resume(run_dir, "--budget", "12")
    assert res.exit_code == 0, res.output
    assert "generations.jsonl line 1 unreadable" in res.stderr


@pytest.mark.parametrize("name", ["evaluations.jsonl", "generations.jsonl", "settings.json"])
def test_a_run_file_replaced_by_a_folder_is_one_line(run_dir, name):
    (run_dir / name).unlink()
    (run_dir / name).mkdir()
    one_line_error(resume(run_dir), name)


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda s: s.update(space="nope"), "space"),
        (lambda s: s.update(space_values={"bogus": [1]}), "bogus"),
        (lambda s: s.update(hardware=[1]), "hardware"),
        (lambda s: s.update(pop_size="12"), "pop_size"),
    ],
)
def test_a_bad_settings_file_is_one_line(run_dir, change, needle):
    path = run_dir / "settings.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    one_line_error(resume(run_dir), "settings.json", needle)


# ------------------------------------------------------------------ item 12: smaller ones
def test_reprinting_a_finished_run_leaves_its_log_as_it_was(run_dir):
    before = (run_dir / "generations.jsonl").read_bytes()
    for _ in range(2):
        res = resume(run_dir)
        assert res.exit_code == 0 and "Pareto frontier" in res.output, res.output
    assert (run_dir / "generations.jsonl").read_bytes() == before


@pytest.mark.parametrize("option", [["--seed", "5"], ["--space", "transxl"], ["--objectives", "flops"]])
def test_resume_refuses_settings_it_would_ignore(run_dir, option):
    before = (run_dir / "settings.json").read_bytes()
    one_line_error(resume(run_dir, *option), option[0], "--resume")
    assert (run_dir / "settings.json").read_bytes() == before


def _lts_copy(data_dir: Path, tmp_path: Path) -> Path:
    import yaml

    src, dst = data_dir / "lts" / "random_GPT2_wt103", tmp_path / "lts"
    for j in range(3):
        (dst / "config_0" / f"j{j}").mkdir(parents=True)
        shutil.copy(src / "config_0" / f"j{j}" / "model_config.yaml", dst / "config_0" / f"j{j}")
    ppl = yaml.safe_load((src / "ppl_summary.yaml").read_text())
    keep = {k: v for k, v in ppl.items() if k in {f"config_0_j{j}" for j in range(3)}}
    (dst / "ppl_summary.yaml").write_text(yaml.safe_dump(keep))
    return dst


def test_a_negative_perplexity_is_skipped_not_ranked(data_dir, tmp_path):
    import yaml

    from trainfree.bench.loaders import load_benchmark

    dst = _lts_copy(data_dir, tmp_path)
    ppl = yaml.safe_load((dst / "ppl_summary.yaml").read_text())
    ppl["config_0_j1"]["valid_ppl"] = -5.0
    (dst / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    bench = load_benchmark("gpt2", dst)
    assert [e.id for e in bench.entries] == ["config_0_j0", "config_0_j2"]
    assert [eid for eid, _ in bench.skipped] == ["config_0_j1"]


def test_an_lts_entry_that_is_a_symlink_loop_is_noted(data_dir, tmp_path):
    from trainfree.bench.loaders import load_benchmark

    dst = _lts_copy(data_dir, tmp_path)
    (dst / "M5").symlink_to(dst / "M5")  # a loop: the glob used to pass over it unsaid
    bench = load_benchmark("gpt2", dst)
    assert len(bench.entries) == 3
    assert [eid for eid, why in bench.skipped if "symbolic link" in why] == ["M5"]


def test_a_space_smaller_than_the_population_ends_cleanly(tmp_path):
    """Three architectures, a population of four: the optimiser runs out of new ones (it used
    to end in AttributeError: 'NoneType' object has no attribute 'get')."""
    sets = ["--set", "n_layer=[1]", "--set", "d_model=[64]", "--set", "d_inner=[128]", "--set", "div_val=[1]"]
    sets += ["--set", "d_embed=[-1]"]
    args = ["search", "--out", str(tmp_path / "run"), *sets, "--objectives", "params", "--budget", "8"]
    res = runner.invoke(app, [*args, "--pop-size", "4", "--seq-len", "32", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert 0 < len((tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()) < 8
