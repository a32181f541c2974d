"""The fault probe's findings on ``trainfree export`` (issue 30): ``--force`` never deletes
the export's own input, only the run's own files are read, a symbolic link named as
``--out`` is refused, a killed export's temporary folder is removed by the next one, a
model too large for the machine is one line, and a damaged run is one line. Each test failed
before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("transformers")

from trainfree.cli import app
from trainfree.hardware import HardwareSettings
from trainfree.search import SearchRun, SearchSettings

runner = CliRunner()
TINY = {"n_layer": [1, 2], "d_model": [64], "d_inner": [128, 256], "d_embed": [-1], "div_val": [1]}


def one_line_error(res, *needles: str) -> str:
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert err.startswith("error:") and "\n" not in err, err
    for needle in needles:
        assert needle in " ".join(err.split()), err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "run"
    s = SearchSettings(
        space="gpt2",
        space_values=TINY,
        objectives=["params"],
        budget="4",
        pop_size=4,
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


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ item 4: --force on its own input
@pytest.mark.parametrize("where", ["the run", "its parent", "inside the run", "the current folder"])
def test_force_never_deletes_the_export_input(run_dir, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    out = {"the run": run_dir, "its parent": tmp_path, "inside the run": run_dir / "configs" / "x"}
    before = snapshot(run_dir)
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(out.get(where, Path("."))), "--force")
    one_line_error(res, "--out")
    assert snapshot(run_dir) == before


def a_config(**change) -> dict:
    import numpy as np

    from trainfree.spaces import get_space

    sp = get_space("gpt2", **TINY)
    return {**sp.config_to_dict(sp.sample(np.random.default_rng(0))), **change}


def test_force_never_deletes_the_config_file(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    cfg = folder / "arch.json"
    cfg.write_text(json.dumps(a_config()))
    res = export("--space", "gpt2", "--config", str(cfg), "--out", str(folder), "--force")
    one_line_error(res, "overlaps the export's input")
    assert cfg.exists()


# ------------------------------------------------------------------ item 5: outside files, symlinked --out
def test_a_frontier_row_naming_an_outside_file_is_refused(run_dir, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"space": "gpt2", "config": {"n_layer": 1}}))
    path = run_dir / "frontier.json"
    data = json.loads(path.read_text())
    data["models"][0]["config_file"] = str(secret)
    path.write_text(json.dumps(data))
    one_line_error(export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e")), "config_file")
    data["models"][0]["config_file"] = "configs/../../secret.json"
    path.write_text(json.dumps(data))
    one_line_error(export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e")), "config_file")


def test_a_symlinked_config_file_of_the_run_is_refused(run_dir, tmp_path):
    row = json.loads((run_dir / "frontier.json").read_text())["models"][0]
    target = run_dir / row["config_file"]
    outside = tmp_path / "outside.json"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e"))
    one_line_error(res, "symbolic link")


def test_an_out_that_is_a_symlink_is_refused_and_kept(run_dir, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(real)
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(link), "--force")
    one_line_error(res, "symbolic link")
    assert link.is_symlink() and (real / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real", "run"]  # no stray .link.old-*


# ------------------------------------------------------------------ item 6: a killed export's leftovers
def test_a_killed_exports_temporary_folder_is_removed_by_the_next(run_dir, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftovers = [tmp_path / f".e.tmp-{dead.pid}-abc123", tmp_path / f".other.old-{dead.pid}-x_1"]
    for p in leftovers:
        p.mkdir()
        (p / "model.safetensors").write_bytes(b"0" * 1000)
    alive = tmp_path / f".e.tmp-{os.getpid()}-live"  # an export still running: kept
    alive.mkdir()
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e"))
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in leftovers) and alive.exists()
    assert (tmp_path / "e" / "config.json").exists()


def test_an_interrupted_export_removes_its_temporary_folder(run_dir, tmp_path, monkeypatch):
    from trainfree.errors import Terminated
    from trainfree.export import export as export_module

    def terminated(*args, **kwargs):
        raise Terminated  # as SIGTERM raises it (trainfree.signals)

    monkeypatch.setattr(export_module, "_write_hf", terminated)
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e"))
    assert res.exit_code == 143 and "Traceback" not in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ------------------------------------------------------------------ item 10: memory guard
@pytest.mark.parametrize("field,value", [("d_embed", 10**9), ("d_inner", 10**8)])
def test_a_model_too_large_is_one_line_before_any_allocation(tmp_path, field, value):
    cfg = a_config()
    cfg[field] = [value] * len(cfg[field]) if isinstance(cfg[field], list) else value
    path = tmp_path / "big.json"
    path.write_text(json.dumps(cfg))
    one_line_error(
        export("--space", "gpt2", "--config", str(path), "--out", str(tmp_path / "e")), "cannot export"
    )
    assert not (tmp_path / "e").exists()


def test_a_model_larger_than_the_memory_left_is_refused(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("trainfree.runtime.workers.available_mb", lambda: 1.0)
    res = export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e"))
    one_line_error(res, "cannot export", "MB are available")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ------------------------------------------------------------------ item 11: a damaged run
@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("settings.json", "[1, 2]", "settings"),
        ("settings.json", '{"space": "nope"}', "space"),
        ("frontier.json", '{"models": 3}', "models"),
        ("frontier.json", '{"models": [1, 2]}', "models"),
        ("frontier.json", "[" * 50_000 + "]" * 50_000, "nested"),
    ],
)
def test_a_damaged_run_is_one_line(run_dir, tmp_path, name, text, needle):
    (run_dir / name).write_text(text)
    one_line_error(export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e")), needle)


def test_a_frontier_row_without_a_config_is_one_line(run_dir, tmp_path):
    path = run_dir / "frontier.json"
    data = json.loads(path.read_text())
    data["models"][0] = {"rank": 0, "config_file": "configs/missing.json", "config": "x"}
    path.write_text(json.dumps(data))
    one_line_error(export("--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "e")), "config")
