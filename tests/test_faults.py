"""The fast part of the fault-injection proof (``benchmarks/faults.py`` repeats every fault
with many seeds): after each fault a real ``trainfree search`` resumes, and no finished
architecture is lost or repeated, the frontier is a subset of the evaluated architectures, no
file outside the run folder changes and no traceback is printed."""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_SCRIPTS))  # faults.py imports its lab (fault_lab.py) from its folder
_SPEC = importlib.util.spec_from_file_location("faults", _SCRIPTS / "faults.py")
faults = importlib.util.module_from_spec(_SPEC)
sys.modules["faults"] = faults  # dataclasses look their module up there
_SPEC.loader.exec_module(faults)


def _assert_clean(outcome) -> None:
    assert not outcome.problems, outcome.problems
    assert (outcome.lost, outcome.duplicates, outcome.tracebacks) == (0, 0, 0)
    print(faults.table([outcome]))


def test_kill_corrupt_plant_then_a_second_process_and_resume(tmp_path):
    """kill -9 part-way; a corrupted middle line of evaluations.jsonl and a cut last line of
    generations.jsonl; a planted state.pkl and planted symlinks (a temporary name, an output
    file, configs/) pointing into a sentinel folder; a second process started on the folder
    while the resume runs. The resume keeps every intact record, writes nothing outside."""
    lab = faults.Lab(tmp_path, seed=1, profile=list(faults.FAST), budget=12)
    o = faults.Outcome("chain")
    faults.kill_partway(lab, o)
    before = lab.finished()
    assert before, "the run was killed before it finished anything"
    o.injected += faults.corrupt_line(lab.out / "evaluations.jsonl", lab.rng, last=False)
    path = lab.out / "generations.jsonl"
    if path.exists() and path.read_bytes():
        path.write_bytes(path.read_bytes()[:-7])  # the last line cut short
        o.injected += 1
    keep = lab.finished() & before
    (lab.out / "state.pkl").write_bytes(pickle.dumps(faults._Planted(lab.sentinel / "PWNED")))
    for name, target in {
        ".frontier.json.abcd1234.tmp": lab.sentinel / "file0.txt",
        "frontier.csv": lab.sentinel / "file1.txt",
        "configs": lab.sentinel / "dir",
    }.items():
        path = lab.out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        (lab.out / name).symlink_to(target)
        o.injected += 1

    resume = lab.start()
    lock = lab.out / ".lock"
    deadline = time.time() + 60  # until the resume holds the folder (its pid is in .lock)
    while time.time() < deadline and resume.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(resume.pid):
            break
        time.sleep(0.01)
    second = lab.run()  # the same command while the first holds the folder
    if resume.poll() is None:  # (a second process on a finished folder simply finishes it)
        assert second == 2 and "in use by another trainfree search" in lab.stderr(), lab.stderr()
        o.injected += 1
    assert resume.wait(300) == 0, lab.stderr(-2)
    o.resumed += 1
    lab.check(o, keep)
    assert not (lab.out / "configs").is_symlink()
    assert not (lab.sentinel / "PWNED").exists()
    _assert_clean(o)


def test_sigterm_while_the_outputs_are_written_stops_cleanly(tmp_path, monkeypatch):
    """A SIGTERM that lands after the search loop, while the outputs are written, is still a
    clean stop (exit 143, where the run stands), not a bare exit 130."""
    from typer.testing import CliRunner

    from trainfree.cli import app
    from trainfree.search.run import SearchRun

    written = SearchRun.write_outputs

    def write_then_terminated(self):
        out = written(self)
        os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(SearchRun, "write_outputs", write_then_terminated)
    sets = [x for v in faults.TINY for x in ("--set", v)]
    args = ["search", "--out", str(tmp_path / "run"), *sets, "--objectives", "params", "--budget", "8"]
    res = CliRunner().invoke(app, [*args, "--workers", "1", "--pop-size", "8", "--seq-len", "32"])
    assert res.exit_code == 143, res.output
    assert "stopped; everything finished is kept" in res.stderr and "--resume" in res.stderr


def test_full_disk_then_resume(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(disk)], capture_output=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {res.stderr.decode().strip()}")
    try:
        lab = faults.Lab(tmp_path, seed=3, profile=list(faults.FAST), budget=12)
        lab.out = disk / "run"
        o = faults.Outcome("full_disk")
        assert lab.run() == 2
        last = lab.stderr().strip().splitlines()[-1]
        assert last.startswith("error: could not write") and "nothing written before was lost" in last
        o.injected += 1
        keep = lab.finished()
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        lab.resume(o)
        lab.check(o, keep)
        _assert_clean(o)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_killed_measurement_child_is_retried(tmp_path):
    lab = faults.Lab(tmp_path, seed=4, profile=list(faults.DEVICE), budget=4)
    o = faults.Outcome("kill_measure_child")
    faults.fault_kill_measure_child(lab, o)
    assert o.injected == 1
    _assert_clean(o)
    assert "worker died" not in (lab.out / "evaluated.csv").read_text()


def test_a_worker_killed_as_it_starts_is_retried_not_fatal(monkeypatch):
    """kill -9 of a pool worker the moment it forks breaks the parent's write to it: the
    search used to end with exit 1 and no word (typer swallows a BrokenPipeError); now the
    task is retried in a fresh pool."""
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    from trainfree.proxies.runner import ProxyPool
    from trainfree.spaces import get_space

    real_submit, broke = ProcessPoolExecutor.submit, []

    def submit(self, *args, **kwargs):
        if not broke:
            broke.append(1)
            raise BrokenPipeError(32, "Broken pipe")
        return real_submit(self, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit)
    sp = get_space("gpt2", n_layer=[1], d_model=[64], d_inner=[128])
    configs = [sp.sample(np.random.default_rng(i)) for i in range(3)]
    got = {}
    pool = ProxyPool(sp, {"seed": 0}, workers=2)
    try:
        pool.run([(i, c, ["params"]) for i, c in enumerate(configs)], lambda k, s: got.update({k: s}))
    finally:
        pool.close()
    assert broke and sorted(got) == [0, 1, 2]
    assert all(s["params"][2] is None for s in got.values()), got  # no error recorded
