"""A run directory is plain data: nothing in it is executed, nothing is lost or mixed.

Each test here failed before the fix it guards (state.pkl unpickled on resume, a corrupted
line truncating the log, two processes in one folder, stale records under new settings,
settings rewritten before a resume was possible, Ctrl-C exiting 0, a finished run
evaluating more)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search_toys import TINY, search_settings
from trainfree.hardware import HardwareSettings
from trainfree.search import RunDirError, SearchRun, SearchSettings
from trainfree.search.evaluator import EvaluationStore


def settings(**kw) -> SearchSettings:
    return search_settings(TINY, **{"budget": "16", "workers": 1, **kw})


def run_once(out: Path, s: SearchSettings | None = None, **kw):
    run = SearchRun.open(out, s, **kw)
    try:
        return run, run.run()
    finally:
        run.close()


class Boom:
    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({str(MARK)!r}).write_text('pwned')",))


MARK = Path("/tmp/trainfree-test-pickle-ran")


def test_a_planted_state_pkl_is_never_loaded(tmp_path):
    MARK.unlink(missing_ok=True)
    out = tmp_path / "run"
    run_once(out, settings(budget="8"))
    (out / "state.pkl").write_bytes(pickle.dumps({"format": "trainfree-search-state/1", "algorithm": Boom()}))
    _run, result = run_once(out, budget="16")
    assert not MARK.exists()
    assert result.evaluations == 16


def test_the_same_command_after_a_finished_run_evaluates_nothing(tmp_path):
    out = tmp_path / "run"
    run_once(out, settings())
    lines = (out / "evaluations.jsonl").read_text().splitlines()
    _run, result = run_once(out, settings())
    assert result.evaluations == 16
    assert (out / "evaluations.jsonl").read_text().splitlines() == lines


def test_a_corrupted_middle_line_is_skipped_and_kept(tmp_path):
    out = tmp_path / "run"
    run_once(out, settings(budget="8"))
    path = out / "evaluations.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = b'{"key": \xff broken\n'
    path.write_bytes(b"".join(lines))
    with pytest.warns(RuntimeWarning, match="line 5: unreadable"):
        store = EvaluationStore(path)
    assert len(store) == 7
    assert path.read_bytes().splitlines(keepends=True)[4] == b'{"key": \xff broken\n'  # kept on disk


def test_records_of_other_settings_are_never_mixed_in(tmp_path):
    first = tmp_path / "first"
    run_once(first, settings(budget="8"))
    (first / "settings.json").unlink()  # a user deletes it and reruns with another seq_len:
    other = settings(budget="8", hardware=HardwareSettings(seq_len=16, warmup=0, repeats=1))
    with pytest.raises(RunDirError, match="holds no search run"):  # refused: no longer a run
        SearchRun.open(first, other)
    out = tmp_path / "run"  # ... so its records are copied into a new run of other settings
    SearchRun.open(out, other).close()
    (out / "evaluations.jsonl").write_bytes((first / "evaluations.jsonl").read_bytes())
    with pytest.warns(RuntimeWarning, match="other settings"):
        _run, result = run_once(out, other)
    fps = {json.loads(x)["fp"] for x in (out / "evaluations.jsonl").read_text().splitlines()}
    assert len(fps) == 2 and result.evaluations == 8


def test_a_second_process_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    first = SearchRun.open(out, settings())
    try:
        with pytest.raises(RunDirError, match=f"in use by another trainfree search \\(pid {os.getpid()}\\)"):
            SearchRun.open(out, settings())
    finally:
        first.close()
    SearchRun.open(out, settings()).close()  # released


def test_a_failed_resume_changes_nothing(tmp_path):
    out = tmp_path / "run"
    run_once(out, settings(budget="8"))
    before = (out / "settings.json").read_text()
    with pytest.raises(Exception, match="budget"):
        SearchRun.open(out, budget="ten")
    assert (out / "settings.json").read_text() == before
    (out / "settings.json").write_text(before.replace('"pop_size": 8', '"pop_size": "8"'))
    with pytest.raises(RunDirError, match="pop_size"):
        SearchRun.open(out)


def test_leftover_temporaries_are_cleaned_and_out_must_be_a_folder(tmp_path):
    out = tmp_path / "run"
    run_once(out, settings(budget="8"))
    (out / ".frontier.json.abc123.tmp").write_text("half")
    run_once(out, budget="8")
    assert not list(out.glob(".*.tmp"))
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        SearchRun.open(afile, settings())


def test_written_files_get_normal_modes(tmp_path):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        run_once(out, settings(budget="8"))
    finally:
        os.umask(old)
    for name in ("settings.json", "evaluated.csv", "frontier.csv", "frontier.json", "frontier.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainfree", *args]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_cleanly(tmp_path, sig, code):
    out = tmp_path / "run"
    args = [
        "search",
        "--out",
        str(out),
        "--objectives",
        "params",
        "--budget",
        "400",
        "--pop-size",
        "8",
        "--workers",
        "2",
    ]
    for key, values in TINY.items():
        args += ["--set", f"{key}={json.dumps(values)}"]
    proc = subprocess.Popen(
        _cli(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "100", "TRAINFREE_CACHE": str(tmp_path / "c")},
    )
    jsonl = out / "evaluations.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 16):
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert "--resume" in stderr
    keys = [json.loads(x)["key"] for x in jsonl.read_text().splitlines()]
    assert len(keys) == len(set(keys))


def _marked_processes(mark: str) -> list[int]:
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark.encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            pass
    return pids


def test_kill_9_leaves_no_worker_behind(tmp_path):
    mark = f"TRAINFREE_TEST_MARK=orphans-{os.getpid()}-{time.time_ns()}"
    out = tmp_path / "run"
    args = [
        "search",
        "--out",
        str(out),
        "--objectives",
        "params",
        "--budget",
        "400",
        "--pop-size",
        "8",
        "--workers",
        "2",
        "--no-cache",
    ]
    for key, values in TINY.items():
        args += ["--set", f"{key}={json.dumps(values)}"]
    env = {**os.environ, mark.split("=")[0]: mark.split("=")[1]}
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    jsonl = out / "evaluations.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 8):
        time.sleep(0.05)
    assert len(_marked_processes(mark)) >= 3  # the search, the fork server and its workers
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _marked_processes(mark):
        time.sleep(0.2)
    assert _marked_processes(mark) == []
