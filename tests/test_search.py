"""The search: budgets and settings, the pymoo operators, the frontier files, resuming a run
(also after kill -9), constraints, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from search_toys import TINY, search_settings
from trainfree import cli
from trainfree.errors import ConfigError
from trainfree.search import SearchRun, SearchSettings, parse_budget
from trainfree.search.algorithms._pymoo import SpaceCrossover, SpaceMutation, SpaceProblem, SpaceSampling
from trainfree.search.evaluation import Evaluation
from trainfree.search.evaluator import EvaluationStore
from trainfree.search.pareto import nondominated


def settings(**kw) -> SearchSettings:
    return search_settings(TINY, **kw)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("200", (200, None)),
        ("50evals", (50, None)),
        ("90s", (None, 90.0)),
        ("10m", (None, 600.0)),
        ("1.5h", (None, 5400.0)),
    ],
)
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "0", "ten minutes", "5d", "-3"])
def test_parse_budget_refuses(text):
    with pytest.raises(ConfigError, match="'budget'"):
        parse_budget(text)


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"objectives": ["speed"]}, "objectives"),
        ({"objectives": []}, "objectives"),
        ({"objectives": ["params", "params"]}, "objectives"),
        ({"alpha": "fit:50"}, "alpha"),
        ({"proxy": "nope"}, "proxy"),
        ({"pop_size": 2}, "pop_size"),
        ({"algorithm": "cmaes"}, "algorithm"),
        ({"limits": {"latency": -1}}, "max latency"),
        ({"limits": {"speed": 1}}, "limits"),
        ({"costs": "guessed"}, "costs"),
        ({"seed": -1}, "seed"),
        ({"pop_size": "12"}, "pop_size"),
    ],
)
def test_settings_are_validated(kw, field, tmp_path):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        SearchRun.open(tmp_path / "run", settings(**kw))
    assert not (tmp_path / "run" / "settings.json").exists()


def test_operators_produce_valid_canonical_vectors():
    from trainfree import get_space

    space = get_space("gpt2", **TINY)
    problem = SpaceProblem(space, n_obj=2, n_constr=1)
    rng = np.random.default_rng(0)
    X = SpaceSampling()._do(problem, 20, random_state=rng)
    children = SpaceCrossover()._do(problem, np.stack([X[:10], X[10:]]), random_state=rng)
    mutants = SpaceMutation()._do(problem, X, random_state=rng)
    for x in [*X, *children.reshape(-1, X.shape[1]), *mutants]:
        assert np.array_equal(space.encode(space.decode(x)), x)  # canonical
    assert all(space.decode(m) != space.decode(x) for m, x in zip(mutants, X, strict=True))


def _read(out: Path):
    evaluated = pd.read_csv(out / "evaluated.csv")
    frontier = json.loads((out / "frontier.json").read_text())
    return evaluated, frontier


def test_search_writes_a_true_frontier_and_buildable_configs(tmp_path):
    out = tmp_path / "run"
    result = SearchRun.open(out, settings()).run()
    assert result.evaluations == 24 and result.generations == 3
    evaluated, frontier = _read(out)
    assert len(evaluated) == 24 and evaluated["config"].is_unique
    # the frontier is exactly the non-dominated set of everything evaluated
    F = np.column_stack([-evaluated["zerolm"], evaluated["params"], evaluated["flops"]])
    expected = set(evaluated["index"].iloc[nondominated(F)])
    assert {m["index"] for m in frontier["models"]} == expected
    assert frontier["objectives"] == ["zerolm", "params", "flops"]
    assert (out / "frontier.png").stat().st_size > 10_000
    from trainfree import get_space

    space = get_space("gpt2", **TINY)
    for m in frontier["models"]:
        payload = json.loads((out / m["config_file"]).read_text())
        assert payload["space"] == "gpt2" and payload["space_values"] == TINY  # the file says what it is
        cfg = space.config_from_dict(payload["config"])
        model = space.build(cfg)
        assert sum(p.numel() for p in model.parameters()) == m["params"]
    assert len(list((out / "configs").glob("*.json"))) == len(frontier["models"])
    shown = CliRunner().invoke(cli.app, ["info", "--config", str(out / frontier["models"][0]["config_file"])])
    assert shown.exit_code == 0 and "total" in shown.output, shown.output  # no --space needed
    csv = pd.read_csv(out / "frontier.csv")
    assert list(csv["index"]) == [m["index"] for m in frontier["models"]]


def test_resume_continues_without_repeating(tmp_path):
    straight = tmp_path / "straight"
    SearchRun.open(straight, settings(budget="40", workers=1)).run()
    parts = tmp_path / "parts"
    first = SearchRun.open(parts, settings(budget="16", workers=2))  # parallel proxies: same result
    first.run()
    first.close()
    run = SearchRun.open(parts, budget="40")
    assert run.generation == 2 and len(run.store) == 16
    run.run()
    a, b = _read(straight)[0], _read(parts)[0]
    assert len(b) == 40 and b["config"].is_unique
    assert set(a["config"]) == set(b["config"])  # same seed, same search
    lines = (parts / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == 40


def test_store_drops_a_line_cut_by_a_kill(tmp_path):
    path = tmp_path / "evaluations.jsonl"
    rec = {"key": "a", "index": 0, "generation": 0, "config": {}, "feasible": False}
    path.write_text(json.dumps(rec) + "\n" + '{"key": "b", "ind')
    store = EvaluationStore(path)
    assert list(store.records) == ["a"]
    store.add([{**rec, "key": "c", "index": 1}])
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["a", "c"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainfree.cli", *args]


def test_kill_9_then_resume(tmp_path):
    """A run killed with SIGKILL mid-generation resumes, loses and repeats nothing, and ends
    with the same architectures as an uninterrupted run."""
    common = ["--space", "gpt2", "--objectives", "params,flops", "--pop-size", "8", "--seed", "3"]
    for key, values in TINY.items():
        common += ["--set", f"{key}={json.dumps(values)}"]
    env = {**os.environ, "COLUMNS": "200"}
    straight = tmp_path / "straight"
    subprocess.run(
        _cli("search", "--out", str(straight), "--budget", "96", *common),
        check=True,
        env=env,
        capture_output=True,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli("search", "--out", str(killed), "--budget", "96", *common),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    jsonl = killed / "evaluations.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 16:  # two generations done
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(jsonl.read_text().splitlines())
    assert 16 <= n_before < 96
    res = subprocess.run(
        _cli("search", "--resume", "--out", str(killed)), env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "continuing" in res.stderr
    a, b = _read(straight)[0], _read(killed)[0]
    assert len(b) == 96 and b["config"].is_unique
    assert set(a["config"]) == set(b["config"])
    keys = [json.loads(x)["key"] for x in jsonl.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 96


def test_constraints_keep_violators_off_the_frontier(tmp_path):
    out = tmp_path / "run"
    SearchRun.open(out, settings(limits={"params": 6e6})).run()
    evaluated, frontier = _read(out)
    assert frontier["models"] and all(m["params"] <= 6e6 for m in frontier["models"])
    assert (evaluated["params"] > 6e6).any()  # they were evaluated, just not admitted


def test_search_with_measured_latency_and_memory(tmp_path):
    out = tmp_path / "run"
    s = settings(
        objectives=["latency", "memory"],
        budget="8",
        pop_size=4,
        costs="measured",
        space_values={"n_layer": [1, 2], "d_model": [64], "d_inner": [128, 256], "div_val": [1]},
    )
    result = SearchRun.open(out, s).run()
    evaluated, frontier = _read(out)
    assert result.evaluations == 8 and result.costs == "measured"
    assert (evaluated["latency_ms"] > 0).all() and (evaluated["memory_mb"] > 0).all()
    # memory is the footprint: weights and the activation peak together
    assert np.allclose(evaluated["memory_mb"], evaluated["weights_mb"] + evaluated["activation_mb"])
    assert all(m["latency_ms"] > 0 for m in frontier["models"])


def test_cli_refuses_to_overwrite_and_reports_bad_arguments(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["search", "--out", str(out), "--objectives", "params", "--budget", "8", "--pop-size", "4"]
    for key, values in TINY.items():
        args += ["--set", f"{key}={json.dumps(values)}"]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    assert "Pareto frontier" in first.output
    again = runner.invoke(cli.app, args)  # the same command again continues its run
    assert again.exit_code == 0 and "continuing" in again.output, again.output
    other = runner.invoke(cli.app, [*args, "--seed", "1"])  # other settings: refused, run untouched
    assert other.exit_code == 2 and "seed" in other.output and "--resume" in other.output
    assert json.loads((out / "settings.json").read_text())["seed"] == 0
    bad = runner.invoke(cli.app, ["search", "--out", str(tmp_path / "x"), "--objectives", "speed"])
    assert bad.exit_code == 2 and "objectives" in bad.output
    bad_set = runner.invoke(cli.app, ["search", "--out", str(tmp_path / "y"), "--set", "n_layer=2"])
    assert bad_set.exit_code == 2 and "--set" in bad_set.output
    nothing = runner.invoke(cli.app, ["search", "--resume", "--out", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "no search run" in nothing.output


def test_cli_profile(tmp_path):
    from trainfree import get_space

    space = get_space("gpt2", **TINY)
    cfg_file = tmp_path / "arch.json"
    cfg_file.write_text(space.config_to_json(space.sample(np.random.default_rng(1))))
    runner = CliRunner()
    res = runner.invoke(
        cli.app,
        [
            "profile",
            "--space",
            "gpt2",
            "--config",
            str(cfg_file),
            "--seq-len",
            "32",
            "--repeats",
            "2",
            "--no-cache",
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "latency" in res.output and "peak memory" in res.output
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["measurement"]["ok"] and data["settings"]["seq_len"] == 32
    bad = runner.invoke(
        cli.app, ["profile", "--space", "gpt2", "--config", str(cfg_file), "--backend", "tvm"]
    )
    assert bad.exit_code == 2 and "backend" in bad.output


def test_frontier_resolution_drops_near_twins_only():
    """A model that another beats in score while costing at most 3% more is not a frontier
    model at 3% resolution; a model 10% cheaper stays, analytic costs count exactly, and
    equal scores never remove each other."""
    from trainfree.search.pareto import frontier_rows

    def rec(score, lat, mem, params=1):
        return Evaluation.from_flat(
            {"feasible": True, "latency_ms": lat, "memory_mb": mem, "params": params, "score": score},
            check=False,
        )

    recs = [
        rec(1.00, 100.0, 200.0),  # 0: beaten by 1 within 3% on latency and memory
        rec(1.01, 102.0, 201.0),  # 1
        rec(0.90, 90.0, 180.0),  # 2: 10% cheaper, stays
        rec(1.01, 101.0, 203.0),  # 3: ties 1 on score, costs differ: both stay
    ]
    scores = np.array([r.score for r in recs])
    exact, _ = frontier_rows(recs, scores, ["latency", "memory"])
    assert sorted(exact) == [0, 1, 2, 3]
    coarse, _ = frontier_rows(recs, scores, ["latency", "memory"], resolution=0.03)
    assert sorted(coarse) == [1, 2, 3]
    recs[1].values["params"] = recs[3].values["params"] = 2  # more parameters (exact): they no longer beat 0
    coarse, _ = frontier_rows(recs, scores, ["latency", "params"], resolution=0.03)
    assert 0 in coarse


def test_resolution_is_validated():
    with pytest.raises(ConfigError, match="resolution"):
        SearchSettings(space="gpt2", resolution=1.5).validate()


def test_a_prediction_must_beat_a_measurement_by_more_than_its_error():
    from trainfree.search.pareto import frontier_rows

    def rec(fields):
        return Evaluation.from_flat(fields, check=False)

    measured = rec({"feasible": True, "latency_ms": 100.0, "memory_mb": 100.0, "costs": "measured"})
    predicted = rec({"feasible": True, "latency_ms": 92.0, "memory_mb": 100.0, "costs": "predicted"})
    scores = np.array([1.0, 0.9])  # the measured model scores higher; the prediction is 8% faster
    recs = [measured, predicted]
    assert sorted(frontier_rows(recs, scores, ["latency", "memory"], 0.05)[0]) == [0, 1]
    margin = {"latency": 0.05, "memory": 0.05}  # 1.05 x 1.05: 10% is within the error
    assert frontier_rows(recs, scores, ["latency", "memory"], 0.05, margin)[0] == [0]
    recs[1] = rec({**predicted.flat(), "costs": "measured"})  # measured, the same 8% is a real difference
    assert sorted(frontier_rows(recs, scores, ["latency", "memory"], 0.05, margin)[0]) == [0, 1]


def test_a_run_bound_by_measuring_gets_larger_generations():
    """A wall-time run that predicts its device costs gets about 10 generations whatever their
    size (issue 25): its population is sized to those, up to 400; every other run keeps 30
    generations of at most 100 (the golden runs' sizes)."""
    from trainfree.search.loop import population_size

    assert population_size(7000, measuring=True) == 400  # the main job: ~5 ms an architecture
    assert population_size(2000, measuring=True) == 200
    assert population_size(7000, measuring=False) == 100
    assert population_size(120, measuring=False) == 12
    assert population_size(1200, measuring=False) == 40
