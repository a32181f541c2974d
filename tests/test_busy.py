"""A search on a machine that is doing something else (issue 25): timings that another program
does not inflate, a calibration that does not give up, a budget that holds, a finished run
reprinted rather than continued, and the user told."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from trainfree.cli.progress import _Budget
from trainfree.hardware.cost_accuracy import accuracy, pairs_ordered
from trainfree.hardware.load import MachineLoad, under_load

BUSY = [sys.executable, "-c", "while True: pass"]


def _busy(n: int, cpu: int | None = None) -> list[subprocess.Popen]:
    procs = [subprocess.Popen(BUSY) for _ in range(n)]
    if cpu is not None:
        for p in procs:
            os.sched_setaffinity(p.pid, {cpu})
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_on_cpu_time_ignores_a_program_that_shares_the_core():
    """One CPU shared with a busy loop: the wall time of a single-thread pass doubles, its
    on-CPU time (what the search's latency now is) stays near the quiet figure, and the
    runs are reported as interrupted."""
    script = textwrap.dedent(
        """
        import json, os, torch
        from trainfree.hardware.timing import time_runs
        os.sched_setaffinity(0, {0})
        torch.set_num_threads(1)
        a, w = torch.randn(256, 512), torch.randn(512, 2048)
        run = lambda: [torch.mm(a, w) for _ in range(20)]
        quiet = time_runs(run, lambda: None, 2, 7, 7, "cpu").summary()
        print(json.dumps(quiet), flush=True)
        input()  # the busy loop starts
        busy = time_runs(run, lambda: None, 2, 7, 7, "cpu").summary()
        print(json.dumps(busy), flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    quiet = json.loads(child.stdout.readline())
    procs = _busy(1, cpu=0)
    try:
        time.sleep(0.3)
        child.stdin.write("\n")
        child.stdin.flush()
        busy = json.loads(child.stdout.readline())
    finally:
        _stop(procs)
        child.wait(timeout=60)
    assert quiet["latency_clock"] == busy["latency_clock"] == "cpu"
    assert np.median(busy["runs_ms"]) > 1.5 * np.median(busy["cpu_runs_ms"])  # the core was shared
    assert busy["interrupted_share"] >= 0.5  # (the quiet share depends on what else runs)
    assert busy["latency_ms"] == pytest.approx(quiet["latency_ms"], rel=0.3)


def test_ordered_pairs_count_only_pairs_far_enough_apart():
    measured = np.array([10.0, 10.5, 20.0, 40.0])
    # 10 and 10.5 are within 10% of each other: their order does not count
    assert pairs_ordered(np.array([10.5, 10.0, 20.0, 40.0]), measured) == 1.0
    assert pairs_ordered(np.array([10.0, 10.5, 41.0, 40.0]), measured) == pytest.approx(4 / 5)
    assert math.isnan(pairs_ordered(np.array([1.0, 2.0]), np.array([10.0, 10.2])))
    assert accuracy(measured, measured)["pairs_ordered"] == 1.0


def _record(**fields):
    return {"measured": True, "hardware_cached": False, "repeatable": True, **fields}


def test_machine_load_from_the_measurements():
    quiet = [_record(others_running=0.1, interrupted_share=0.0, reference_ms=2.0) for _ in range(5)]
    assert not MachineLoad.of(quiet).busy
    shared = [_record(others_running=1.8, interrupted_share=1.0, reference_ms=2.1) for _ in range(5)]
    load = MachineLoad.of(quiet + shared)
    assert load.busy and load.repeatable and load.under_load == 5
    assert "busy" in load.describe() and "on-CPU" in load.describe("cpu")
    assert all(under_load(r) for r in shared) and not any(under_load(r) for r in quiet)
    noisy = [_record(repeatable=False, reference_ms=2.0) for _ in range(4)]
    assert not MachineLoad.of(noisy).repeatable
    assert "not repeatable" in MachineLoad.of(noisy).describe()
    # cached figures say nothing of the machine now; one measurement whose runs were all
    # interrupted does (a short budget on a loaded machine may measure only one)
    assert not MachineLoad.of([{**r, "hardware_cached": True} for r in shared]).busy
    assert MachineLoad.of(shared[:1]).busy and not MachineLoad.of([]).busy
    assert json.dumps(MachineLoad.of([]).as_dict())  # NaN written as null


def test_the_time_left_moves_with_the_clock_between_reports():
    budget = _Budget(None, 60.0)
    budget.spent, budget.at = 10.0, time.monotonic()
    first = budget.left()
    time.sleep(0.3)
    assert first - budget.left() >= 0.25
    evals = _Budget(100, None)
    evals.done, evals.rate = 40, 2.0
    assert evals.left() == pytest.approx(30.0)


def _search(out: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "trainfree", "search", "--out", str(out), *args]
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_finished_run_is_reprinted_not_continued(tmp_path):
    out = tmp_path / "run"
    args = ("--objectives", "params", "--budget", "24", "--set", "n_layer=[2,3]", "--no-cache")
    first = _search(out, *args)
    assert first.returncode == 0, first.stderr
    files = {name: (out / name).read_bytes() for name in ("evaluations.jsonl", "generations.jsonl")}
    again = _search(out, *args)
    assert again.returncode == 0, again.stderr
    assert "finished earlier" in again.stderr
    assert {name: (out / name).read_bytes() for name in files} == files  # nothing evaluated or logged
    more = _search(out, "--resume", "--budget", "48")
    assert more.returncode == 0, more.stderr
    assert len((out / "evaluations.jsonl").read_text().splitlines()) > len(
        files["evaluations.jsonl"].decode().splitlines()
    )


def test_the_budget_holds_and_the_user_is_told_on_a_loaded_machine(tmp_path):
    """Two busy loops on a 2-core machine: the search still ends within its budget (plus the
    start-up's imports), exits 0, writes a measured frontier and says the machine is busy."""
    out = tmp_path / "run"
    procs = _busy(max(2, os.cpu_count() or 1))
    try:
        t0 = time.monotonic()
        small = ("--set", "n_layer=[2]", "--set", "d_model=[64,128]")
        res = _search(out, "--budget", "25s", *small, "--no-cache")
        wall = time.monotonic() - t0
    finally:
        _stop(procs)
    assert res.returncode == 0, res.stderr
    log = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    # the budget counts from the command's start, imports included; the bar is 5 s
    # over with one busy loop and 4 minutes, this is a 25 s budget beside two or more
    assert log[-1]["finished"] and log[-1]["elapsed"] <= 25.0 + 8.0
    assert wall <= 25.0 + 10.0
    front = json.loads((out / "frontier.json").read_text())
    assert front["models"] and all(m["costs"] == "measured" for m in front["models"])
    assert front["machine_load"]["busy"] is True, front["machine_load"]
    assert "busy" in res.stderr or "not repeatable" in res.stderr
    assert all(len(line) <= 80 for line in res.stderr.splitlines())
