"""The fault probe's findings on stops and devices (issue 30): Ctrl-C or SIGTERM in the first
seconds of a search is one line and exit 130/143 (no traceback from the main process or from
the fork server while it imports torch), the outputs are written with stops held, a run where
nothing is feasible still plots, a device that cannot measure is refused before the search,
and nothing is written that a command does not need (ONNX Runtime's device-id file). Each
test failed before its fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from trainfree.cli import app

SETS = ["--set", "n_layer=[1,2,3]", "--set", "d_model=[64,128]", "--set", "d_inner=[128,256,512]"]
SEARCH = ["search", *SETS, "--objectives", "params", "--pop-size", "8", "--seq-len", "32", "--workers", "2"]


def _search(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "TRAINFREE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "trainfree", *SEARCH, "--out", str(tmp_path / "run"), "--budget", "200"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches all of it
    )


@pytest.mark.parametrize("after", [0.3, 2.0, 3.5, 6.0])
def test_ctrl_c_to_the_whole_group_in_the_first_seconds_is_one_line(tmp_path, after):
    proc = _search(tmp_path)
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: main, fork server, workers
    _, err = proc.communicate(timeout=120)
    text = err.decode(errors="replace")
    assert "Traceback" not in text, text
    assert proc.returncode in (130, 0), (proc.returncode, text)
    if proc.returncode:  # (0: a paused machine let the run finish before the signal came)
        assert "stopped" in text.strip().splitlines()[-1], text


@pytest.mark.parametrize("after", [0.3, 3.0])
def test_sigterm_in_the_first_seconds_is_exit_143(tmp_path, after):
    proc = _search(tmp_path)
    time.sleep(after)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    text = err.decode(errors="replace")
    assert "Traceback" not in text and proc.returncode == 143, (proc.returncode, text)


def test_deferred_holds_a_stop_until_the_block_ends():
    from trainfree.errors import Terminated
    from trainfree.signals import deferred, quiet_interrupts, restore_sigterm

    previous = quiet_interrupts()
    done = []
    try:
        with pytest.raises(Terminated), deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            done.append("the block finished")
    finally:
        restore_sigterm(previous)
    assert done == ["the block finished"]


def test_a_frontier_plot_with_nothing_feasible(tmp_path):
    from trainfree.search.evaluation import Evaluation
    from trainfree.search.pareto import plot_frontier

    fields = [{"feasible": False, "params": 100}, {"feasible": False, "params": 200}]
    records = [Evaluation.from_flat(f, check=False) for f in fields]
    plot_frontier(tmp_path / "f.png", records, np.array([np.nan, np.nan]), "zerolm", ["params", "flops"], [])
    assert (tmp_path / "f.png").stat().st_size > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_device_that_cannot_measure_is_refused_before_the_search(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [*SEARCH, "--out", str(out), "--device", "cuda", "--objectives", "latency"])
    assert res.exit_code == 2 and "--device cuda" in res.stderr, res.output
    assert not out.exists()


def test_machine_info_does_not_import_onnxruntime(tmp_path):
    """Importing onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid: a
    search on analytic costs must not (the machine's description names its version all the
    same, from the package metadata)."""
    code = (
        "import sys; from trainfree.hardware.measurement import machine_info; m = machine_info(); "
        "print('onnxruntime' in sys.modules, m.get('onnxruntime'))"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    imported, version = res.stdout.split()
    assert imported == "False", res.stderr
    pytest.importorskip("onnxruntime")
    assert version != "None"
    assert not list(tmp_path.rglob("deviceid"))


def test_outputs_that_fail_after_a_stop_are_a_warning(tmp_path, monkeypatch):
    """A SIGTERM that lands while matplotlib is first imported leaves it half-imported; the
    outputs then fail with ``KeyError: 'Axes:kwdoc'``: after a stop that is a warning (the
    evaluations are kept, --resume writes the outputs), not exit 1 with a traceback."""
    from trainfree.hardware import HardwareSettings
    from trainfree.search import SearchRun, SearchSettings
    from trainfree.search.loop import Loop as _Loop

    def stopped(self):
        raise KeyboardInterrupt

    def half_imported(self):
        raise KeyError("Axes:kwdoc")

    monkeypatch.setattr(_Loop, "go", stopped)
    monkeypatch.setattr(SearchRun, "write_outputs", half_imported)
    s = SearchSettings(
        space="gpt2",
        space_values={"n_layer": [1], "d_model": [64], "d_inner": [128, 256]},
        objectives=["params"],
        budget="4",
        pop_size=4,
        workers=1,
        hardware=HardwareSettings(seq_len=32, warmup=0, repeats=1),
        use_cache=False,
    )
    run = SearchRun.open(tmp_path / "run", s)
    try:
        with pytest.warns(RuntimeWarning, match="outputs were not written"):
            result = run.run()
    finally:
        run.close()
    assert result.stopped == "interrupted"
