"""Cost models: features, calibration sample, fitting and held-out accuracy, persistence,
and a search that predicts costs and measures every frontier model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from trainfree import cli, get_space
from trainfree.hardware import HardwareSettings, costmodel, drift
from trainfree.hardware.calibration import RowCache, calibration_sample
from trainfree.hardware.costmodel import CostModel, accuracy, cost_features, fit_cost_model
from trainfree.search import SearchRun, SearchSettings

SMALL = {
    "n_layer": [1, 2, 3, 4],
    "d_model": [64, 128, 192],
    "d_inner": [128, 512],
    "d_embed": [-1],
    "div_val": [1],
}
HW = HardwareSettings(seq_len=32, warmup=1, repeats=3)


def test_features_are_analytic_and_follow_size():
    space = get_space("gpt2", **SMALL)
    small = space.sample(np.random.default_rng(0))
    f = cost_features(space, small, 1, 32)
    assert set(f) >= {"flops", "params", "layers"} and f["flops"] == space.flops(small, 32)
    assert cost_features(space, small, 4, 32)["flops"] == 4 * f["flops"]  # the batch multiplies the work


def test_calibration_sample_covers_the_genome():
    space = get_space("gpt2", **SMALL)
    configs = calibration_sample(space, 24, seed=0)
    assert len({space.config_to_json(c) for c in configs}) == 24
    depths = {c.n_layer for c in configs}
    assert depths == set(SMALL["n_layer"])  # a Latin hypercube draws every value of a gene
    assert [space.config_to_json(c) for c in calibration_sample(space, 24, seed=0)] == [
        space.config_to_json(c) for c in configs
    ]


def _rows(n: int, noise: float, seed: int = 0) -> list[dict]:
    """Rows whose latency is a known non-negative combination of the features, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f = {
            "flops": rng.uniform(1e6, 1e9),
            "params": rng.uniform(1e5, 1e8),
            "layers": float(rng.integers(1, 16)),
        }
        lat = 2e-8 * f["flops"] + 3e-7 * f["params"] + 0.8 * f["layers"] + 1.0
        act = 1e-8 * f["flops"] + 2.0
        rows.append(
            {
                "key": str(i),
                "features": f,
                "latency_ms": lat * (1 + noise * rng.standard_normal()),
                "activation_mb": act,
                "weights_mb": f["params"] * 4 / 2**20,
            }
        )
    return rows


def test_fit_recovers_a_linear_cost_and_reports_held_out_accuracy():
    model = fit_cost_model(_rows(60, noise=0.0))
    assert model.accuracy["latency_ms"]["within_10pct"] == 1.0
    assert model.accuracy["latency_ms"]["spearman"] > 0.999
    assert model.trustworthy() == (True, "")
    noisy = fit_cost_model(_rows(60, noise=0.5))  # 50% noise: the held-out figures must show it
    assert noisy.accuracy["latency_ms"]["within_10pct"] < 0.5
    assert not noisy.trustworthy()[0] and "latency pairs" in noisy.trustworthy()[1]
    few = fit_cost_model(_rows(8, noise=0.0))
    assert not few.trustworthy()[0] and "calibration measurements" in few.trustworthy()[1]


def test_model_round_trips_as_plain_data_and_rejects_garbage():
    model = fit_cost_model(_rows(30, noise=0.01))
    back = CostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    rows = _rows(5, 0.0, seed=1)
    np.testing.assert_allclose(
        back.predict([r["features"] for r in rows], [1.0] * 5)["latency_ms"],
        model.predict([r["features"] for r in rows], [1.0] * 5)["latency_ms"],
    )
    for bad in ({}, {**model.to_dict(), "scale": [0.0, 1.0, 1.0]}, {**model.to_dict(), "features": []}):
        with pytest.raises(ValueError, match="not a cost model"):
            CostModel.from_dict(bad)


def _shaped_rows(n: int, seed: int = 0) -> list[dict]:
    """Rows whose latency the features explain up to a shape effect: models whose first gene
    is 0 run 35% slower than their work says (like a matrix product too narrow for the peak)."""
    rows = _rows(n, noise=0.01, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for r in rows:
        r["genes"] = [float(rng.integers(0, 3)), float(rng.integers(0, 5))]
        r["latency_ms"] *= 1.35 if r["genes"][0] == 0 else 1.0
    return rows


def test_a_shape_correction_is_kept_only_where_it_lowers_the_held_out_error():
    shaped = _shaped_rows(90)
    model = fit_cost_model(shaped)
    linear = fit_cost_model([{k: v for k, v in r.items() if k != "genes"} for r in shaped])
    assert model.correction and not linear.correction and model.n_genes == 2
    cv = model.accuracy["latency_ms"]
    assert cv["median_ape"] < linear.accuracy["latency_ms"]["median_ape"] and cv["within_10pct"] > 0.9
    test = _shaped_rows(40, seed=7)
    args = ([r["features"] for r in test], [1.0] * 40)
    y = np.array([r["latency_ms"] for r in test])
    with_genes = accuracy(model.predict(*args, [r["genes"] for r in test])["latency_ms"], y)
    assert with_genes["within_10pct"] > accuracy(linear.predict(*args)["latency_ms"], y)["within_10pct"]
    assert with_genes["within_10pct"] > 0.9
    # a row without genes (a record written before the correction) gets the linear part
    lone = model.predict(args[0][:1], [1.0], [None])["latency_ms"]
    assert lone[0] == pytest.approx(model.predict(args[0][:1], [1.0])["latency_ms"][0])
    # plain data: the correction survives JSON, and a damaged one is refused
    back = CostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(
        back.predict(*args, [r["genes"] for r in test])["latency_ms"],
        model.predict(*args, [r["genes"] for r in test])["latency_ms"],
    )
    with pytest.raises(ValueError, match="shape correction"):
        CostModel.from_dict({**model.to_dict(), "correction": "tree\nnot a model"})
    # damaged genes (a hand-edited cache) cost the correction, never the model
    damaged = [dict(r) for r in shaped]
    damaged[0]["genes"] = ["x", "y"]
    hurt = fit_cost_model(damaged)
    assert hurt.n == 90 and not hurt.correction
    assert model.predict(args[0][:1], [1.0], [["x", "y"]])["latency_ms"][0] == pytest.approx(lone[0])
    # where the features explain the latency, the trees cannot help and are left out
    plain = _rows(60, noise=0.01)
    for r in plain:
        r["genes"] = [1.0, 2.0]
    assert not fit_cost_model(plain).correction


def test_sessions_split_at_pauses_and_small_ones_join_their_neighbour():
    from trainfree.hardware import drift

    t0 = 1.7e9
    times = [t0 + i for i in range(6)] + [t0 + 4000 + i for i in range(5)] + [t0 + 9000, None, "x"]
    labels = drift.sessions(times)
    assert labels[:6].tolist() == [0] * 6 and labels[6:11].tolist() == [1] * 5
    assert labels[11] == 1  # one measurement after a pause: too few for a factor of its own
    assert labels[12:].tolist() == [-1, -1]  # no (usable) time: the session of unknown time
    long = drift.sessions([t0 + 60 * i for i in range(40)])  # 39 minutes without a pause
    assert set(long.tolist()) == {0, 1}


def test_latencies_of_earlier_sessions_are_levelled_to_the_latest():
    """The machine ran 15% slower in an earlier session: pooled naively, the model predicts
    between the two levels; levelled, it predicts the latest session's latencies, from a
    handful of its measurements, and says how far the sessions lay apart."""
    t0 = 1.7e9
    old = _rows(60, noise=0.01)
    for i, r in enumerate(old):
        r.update(latency_ms=r["latency_ms"] * 1.15, measured_at=t0 + i)
    new = _rows(6, noise=0.01, seed=1)
    for i, r in enumerate(new):
        r.update(key=f"new{i}", measured_at=t0 + 86400 + i)
    test = _rows(40, noise=0.0, seed=2)
    truth = np.array([r["latency_ms"] for r in test])
    args = ([r["features"] for r in test], [1.0] * 40)
    model = fit_cost_model(old + new)
    assert accuracy(model.predict(*args)["latency_ms"], truth)["median_ape"] < 0.02
    assert [s["n"] for s in model.sessions] == [60, 6]
    assert model.sessions[0]["factor"] == pytest.approx(1.15, abs=0.02) and model.sessions[1]["factor"] == 1.0
    naive = fit_cost_model(old + [{k: v for k, v in r.items() if k != "measured_at"} for r in new])
    assert accuracy(naive.predict(*args)["latency_ms"], truth)["median_ape"] > 0.1
    assert CostModel.from_dict(json.loads(json.dumps(model.to_dict()))).sessions == model.sessions
    assert "2 sessions levelled to the latest (earlier: 1.1" in model.form()  # what the CLI prints
    # one session (or none known): the fit is exactly the plain one
    plain = fit_cost_model([{k: v for k, v in r.items() if k != "measured_at"} for r in old])
    assert fit_cost_model(old).coef == plain.coef and plain.sessions == []
    # a later session on the same level: a difference within the noise of its few
    # measurements is left alone, not turned into a factor
    same = [{**r, "latency_ms": r["latency_ms"] / 1.15} for r in old]
    assert [s["factor"] for s in fit_cost_model(same + new).sessions] == [1.0, 1.0]
    # memory does not drift and is never levelled
    assert model.coef["activation_mb"] == pytest.approx(naive.coef["activation_mb"])


def test_accuracy_figures():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant predictions: no rank, and no warning printed
        assert np.isnan(accuracy(np.full(3, 5.0), np.array([1.0, 2.0, 3.0]))["spearman"])
    a = accuracy(np.array([10.0, 21.0, 30.0]), np.array([10.0, 20.0, 40.0]))
    assert (
        a["spearman"] == 1.0
        and a["within_10pct"] == pytest.approx(2 / 3)
        and a["median_ape"] == pytest.approx(0.05)
    )


def test_row_cache_is_keyed_by_machine_and_settings(tmp_path):
    space = get_space("gpt2", **SMALL)
    cache = RowCache(space, HW, root=tmp_path)
    rows = _rows(3, 0.0)
    cache.save(rows)
    assert [r["key"] for r in RowCache(space, HW, root=tmp_path).load()] == ["0", "1", "2"]
    assert RowCache(space, HardwareSettings(seq_len=64), root=tmp_path).load() == []
    assert RowCache(get_space("gpt2", **{**SMALL, "n_layer": [1]}), HW, root=tmp_path).load() == []
    cache.path.write_text("{not json")
    assert cache.load() == []
    # a cached row's features and genes follow from its key, computed as they are now (rows
    # cached before the shape correction had no genes; before a feature changed, other ones)
    cfg = space.sample(np.random.default_rng(0))
    old = {**_rows(1, 0.0)[0], "key": space.config_to_json(cfg)}
    cache.save([old])
    row = cache.load()[0]
    assert row["genes"] == costmodel.gene_values(space, cfg)
    assert row["features"] == costmodel.features_for(space, cfg, HW) != old["features"]


def test_a_feature_named_for_a_target_is_fitted_for_that_target_only():
    """``prefill_ms:x`` describes the prefill: the decode latency is not fitted on it even where
    it would fit the latency exactly, and the prefill is fitted on it and the shared ones."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        f = {"layers": float(rng.integers(1, 16)), "prefill_ms:batch": rng.uniform(1e6, 1e9)}
        rows.append(
            {
                "key": str(i),
                "features": f,
                "latency_ms": 3e-8 * f["prefill_ms:batch"] + 0.1,
                "prefill_ms": 2e-8 * f["prefill_ms:batch"] + 0.5 * f["layers"],
                "activation_mb": 1.0 + f["layers"],
                "weights_mb": 1.0,
            }
        )
    model = fit_cost_model(rows)
    batch = model.features.index("prefill_ms:batch")
    assert model.coef["latency_ms"][batch] == 0.0 and model.coef["activation_mb"][batch] == 0.0
    assert model.coef["prefill_ms"][batch] > 0 and model.accuracy["prefill_ms"]["median_ape"] < 0.01
    assert list(costmodel.target_columns(["a", "prefill_ms:b", "latency_ms:c"], "latency_ms")) == [0, 2]


def _predicted_settings() -> SearchSettings:
    return SearchSettings(
        space="gpt2",
        space_values=SMALL,
        objectives=["latency", "memory"],
        hardware=HW,
        budget="60",
        pop_size=12,
        calibration=16,
        workers=1,
    )


def test_predicted_search_measures_every_frontier_model(tmp_path, monkeypatch):
    """The mechanics of --costs predicted; the accuracy bar is lowered so that the tiny
    models' noisy latencies (on a loaded test machine) cannot switch the run to measuring."""
    monkeypatch.setenv("TRAINFREE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(costmodel, "MIN_SPEARMAN", -1.0)
    s = _predicted_settings()
    run = SearchRun.open(tmp_path / "run", s)
    result = run.run()
    run.close()
    evaluated = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    assert len(evaluated) == 60
    assert (evaluated["costs"] == "predicted").sum() > 0  # most candidates were never measured
    # each architecture's own feasibility, not the frontier's measured-only mask
    assert evaluated.loc[evaluated["costs"] == "predicted", "feasible"].all()
    frontier = json.loads((tmp_path / "run" / "frontier.json").read_text())
    assert frontier["models"] and all(m["costs"] == "measured" for m in frontier["models"])
    csv = pd.read_csv(tmp_path / "run" / "frontier.csv")
    assert (csv["costs"] == "measured").all() and (csv["latency_ms"] > 0).all()
    predictor = json.loads((tmp_path / "run" / "predictor.json").read_text())
    assert predictor["held_out_accuracy"]["latency_ms"]["n"] >= 16
    assert result.costs == "predicted"
    records = [json.loads(line) for line in (tmp_path / "run" / "evaluations.jsonl").open()]
    assert all(len(r["genes"]) == run.space.n_genes for r in records if "features" in r)
    assert all(r["measured_at"] > 0 for r in records if r.get("measured"))  # when, for sessions
    assert all(r["measured_at"] > 0 for r in run.cost_source.cached_rows())
    assert (evaluated["generation"] == -1).sum() == 16  # the calibration sample, measured
    end = frontier["end_phase"]  # the end phase says what it measured against its reserve
    assert end["measured"] >= 0 and 0.0 <= end["churn_at_end"] <= 0.8 and end["reserve_s"] >= 0
    # the calibration rows are kept for this machine: a second run measures nothing to calibrate
    again = SearchRun.open(tmp_path / "run2", SearchSettings(**{**s.__dict__, "seed": 1}))
    again.run()
    again.close()
    ev2 = pd.read_csv(tmp_path / "run2" / "evaluated.csv")
    assert not (ev2["generation"] == -1).any()
    # ... unless all of them are from an earlier session: then a few fresh ones level them
    cache = json.loads(again.cost_source.rows_cache.path.read_text())
    for row in cache["rows"]:
        row["measured_at"] -= 86400.0
    again.cost_source.rows_cache.path.write_text(json.dumps(cache))
    third = SearchRun.open(tmp_path / "run3", SearchSettings(**{**s.__dict__, "seed": 2}))
    third.run()
    third.close()
    ev3 = pd.read_csv(tmp_path / "run3" / "evaluated.csv")
    assert (ev3["generation"] == -1).sum() == drift.FRESH_ROWS
    assert len(third.cost_source.model.sessions) == 2  # yesterday's rows and today's


def test_a_model_below_the_bar_keeps_choosing_on_predictions(tmp_path, monkeypatch):
    """Below the bar the search still evaluates candidates on predicted costs (measuring
    every architecture on a busy machine left 64 of them in a 4-minute run), and says so."""
    monkeypatch.setenv("TRAINFREE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(costmodel, "MIN_ORDERED", 1.01)  # no model can reach it
    s = _predicted_settings()
    s.budget = "28"
    run = SearchRun.open(tmp_path / "run", s)
    result = run.run()
    run.close()
    assert result.costs == "predicted" and "below its accuracy bar" in run.cost_source.note
    evaluated = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    assert (evaluated["costs"] == "predicted").sum() > 0
    assert "measures more" in json.loads((tmp_path / "run" / "frontier.json").read_text())["cost_model_note"]


def test_calibrate_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINFREE_CACHE", str(tmp_path / "cache"))
    args = ["calibrate", "--space", "gpt2", "-n", "12", "--seq-len", "32", "--repeats", "2"]
    for k, v in SMALL.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    assert "held-out accuracy" in res.output and "latency_ms" in res.output
    assert "cost model: linear" in res.output  # its form: linear, or linear + shape correction
    [path] = (tmp_path / "cache" / "costmodels").glob("gpt2-*.json")
    cache = json.loads(path.read_text())  # the rows measured yesterday: 8 are measured afresh
    for row in cache["rows"]:
        row["measured_at"] -= 86400.0
    path.write_text(json.dumps(cache))
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0 and "2 sessions" in res.output, res.output
    assert len(json.loads(path.read_text())["rows"]) == 12 + drift.FRESH_ROWS
    bad = CliRunner().invoke(cli.app, ["calibrate", "--space", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output


def test_the_frontier_reserve_learns_the_runs_churn():
    """Clearing U unmeasured entrants takes about U / (1 - churn) measurements; the churn
    starts at its prior and follows what this run's measuring batches revealed."""
    from trainfree.search import schedule as loop

    lp = object.__new__(loop.Schedule)
    lp.refined, lp.revealed, lp.refine_seconds, lp.expected = 0, 0, 0.0, 0.0
    assert lp.churn() == pytest.approx(loop.CHURN_PRIOR) and lp.overhead() == pytest.approx(1.0)
    lp.refined, lp.revealed = 40, 0  # measurements that revealed nothing: the prior stands
    assert lp.churn() == pytest.approx(loop.CHURN_PRIOR)
    lp.refined, lp.revealed = 40, 36  # each revealed 0.9: learned, above the prior
    assert lp.churn() == pytest.approx(min(loop.CHURN_MAX, (36 + loop.CHURN_PRIOR * 8) / 48))
    lp.refined, lp.revealed = 40, 60  # each revealed more than one: capped
    assert lp.churn() == loop.CHURN_MAX
    lp.refine_seconds, lp.expected = 90.0, 30.0  # batches took 2.5x what the line expected
    assert lp.overhead() == pytest.approx(2.5)


def test_a_model_that_does_not_fit_before_the_deadline_is_passed_over_for_one_that_does(monkeypatch):
    from trainfree.search import schedule as loop

    lp = object.__new__(loop.Schedule)
    monkeypatch.setattr(lp, "time_left", lambda: 30.0, raising=False)
    monkeypatch.setattr(lp, "seconds_to_measure", lambda flops: np.asarray(flops, float), raising=False)
    # best first: 80 s does not fit, 10 s and 15 s do, then 20 s would pass the deadline
    assert lp.pick([80.0, 10.0, 15.0, 20.0, 1.0], most=4) == [1, 2, 4]
    assert lp.pick([80.0, 10.0, 15.0], most=1) == [1]
    assert lp.pick([80.0, 10.0, 15.0], most=4, safety=1.5) == [1]  # 15 + 22.5 > 30
    assert lp.pick([80.0, 10.0], most=4, reserve=25.0) == []
    monkeypatch.setattr(lp, "time_left", lambda: None, raising=False)  # no wall-time budget
    assert lp.pick([80.0, 10.0, 15.0], most=2) == [0, 1]


def test_a_search_measures_again_what_the_cache_holds_from_an_earlier_session(tmp_path, monkeypatch):
    """Cache entries of this session are read back; one from hours ago (the machine's speed
    drifts) is measured again, and the cache entry replaced."""
    import time

    from trainfree.hardware import MeasurementCache
    from trainfree.hardware.measurement import Measurement
    from trainfree.search.evaluator import EvaluationStore, Evaluator

    sets = dict(n_layer=[1, 2], d_model=[64], d_inner=[128], n_head=[2], d_embed=[-1], div_val=[1])
    space = get_space("gpt2", **sets)
    rng = np.random.default_rng(0)
    distinct: dict[str, object] = {}
    while len(distinct) < 2:
        c = space.sample(rng)
        distinct.setdefault(space.config_to_json(c), c)
    configs = list(distinct.values())
    settings = HardwareSettings(seq_len=16, warmup=0, repeats=2)
    cache = MeasurementCache(tmp_path / "hw")
    timed: list[str] = []

    def figures(latency: float, age: float, how: str) -> Measurement:
        at = time.time() - age
        return Measurement(True, latency, latency, latency, latency, 5.0, 1.0, 4.0, how, measured_at=at)

    def fake_profile(space_, config, settings_, seed=0):
        timed.append(space_.config_to_json(config))
        return figures(10.0, 0.0, "fresh")

    monkeypatch.setattr("trainfree.hardware.measurement_cache.profile", fake_profile)
    keys = [cache.key(space.name, space.config_to_json(c), settings, 0) for c in configs]
    cache.put(keys[0], figures(20.0, 60.0, "minutes ago"))
    cache.put(keys[1], figures(20.0, 3 * 3600.0, "hours ago"))
    store = EvaluationStore(tmp_path / "e.jsonl")
    ev = Evaluator(space, "params", settings, store, None, cache, 0, "fp", True)  # type: ignore[arg-type]
    got: dict[int, dict] = {}
    ev._measure(configs, lambda i, fields: got.__setitem__(i, fields))
    assert got[0]["latency_ms"] == 20.0 and got[0]["hardware_cached"]  # this session: read back
    assert got[1]["latency_ms"] == 10.0 and not got[1]["hardware_cached"]  # hours old: measured again
    assert timed == [space.config_to_json(configs[1])]
    assert cache.get(keys[1]).latency_ms == 10.0  # the cache now holds the fresh figure
