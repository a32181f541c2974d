"""Golden runs: a refactor of the search must not change what a seeded search writes.

The files under tests/golden/ were written by main at ccf6e0d (before the typed search core):
two seeded searches on analytic objectives (no timing enters their results) and the state
files of a 60-evaluation run, which today's code must resume into the same 120-evaluation
run. Only `seconds_proxy` (a wall time) is left out of the comparison; floats are compared
to 1e-9 relative so that a last-bit difference of another BLAS build does not fail the test.
Columns are matched by name: a resumed run's sub-score columns came out in another order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden"
TIMING_COLUMNS = {"seconds_proxy"}


def _search(out: Path, *options: str, cache: Path) -> None:
    command = [sys.executable, "-m", "trainfree", "search", "--out", str(out), *options]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TRAINFREE_CACHE": str(cache), "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _assert_same_table(written: Path, golden: Path) -> None:
    new, old = pd.read_csv(written), pd.read_csv(golden)
    assert sorted(new.columns) == sorted(old.columns), written.name
    assert len(new) == len(old), written.name
    for column in old.columns:
        if column in TIMING_COLUMNS:
            continue
        if pd.api.types.is_float_dtype(old[column]):
            assert np.allclose(new[column], old[column], rtol=1e-9, atol=0, equal_nan=True), column
        else:
            assert (
                new[column].fillna("").astype(str).tolist() == old[column].fillna("").astype(str).tolist()
            ), f"{written.name}: column {column}"


@pytest.mark.parametrize(
    ("golden", "options"),
    [
        (
            "nsga2_gpt2_params_flops",
            ("--objectives", "params,flops", "--budget", "120", "--seed", "0", "--pop-size", "20"),
        ),
        (
            "random_gpt2_params_flops",
            ("--objectives", "params,flops", "--budget", "40", "--seed", "3", "--algorithm", "random"),
        ),
    ],
)
def test_a_seeded_search_writes_the_golden_files(tmp_path, golden, options):
    _search(tmp_path / "run", *options, cache=tmp_path / "cache")
    for name in ("evaluated.csv", "frontier.csv"):
        _assert_same_table(tmp_path / "run" / name, GOLDEN / golden / name)


def test_a_run_written_by_the_old_main_resumes_into_the_same_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN / "run_from_main_ccf6e0d", run)
    _search(run, "--budget", "120", "--resume", cache=tmp_path / "cache")
    for name in ("evaluated.csv", "frontier.csv"):
        _assert_same_table(run / name, GOLDEN / "nsga2_gpt2_params_flops" / name)
