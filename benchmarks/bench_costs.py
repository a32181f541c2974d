"""Cost-model accuracy on held-out architectures, the main job's throughput, and LTS's budget.

    python benchmarks/bench_costs.py accuracy --space gpt2 transxl flexibert
    python benchmarks/bench_costs.py accuracy --space gpt2 --load     # the other core busy
    python benchmarks/bench_costs.py main-job                          # the README's search
    python benchmarks/bench_costs.py lts-budget                        # 3,000 evaluations
    python benchmarks/bench_costs.py repeatability --space gpt2        # one model measured twice
    python benchmarks/bench_costs.py drift --old DIR                   # rows of an earlier session

``accuracy``: for each space, measure a calibration sample (Latin hypercube, seed 0) and a
held-out sample (uniformly random, seed 1) on this machine with the search's default
measurement settings, fit the cost model on the calibration sample only and report latency
and memory accuracy on the held-out architectures (Spearman, median |error|, share within
+-10%), next to the 5-fold cross-validated figures the search prints. ``--load`` runs a
busy loop on another core meanwhile. ``--remeasure`` measures the held-out models a second
time and compares the two measurements by the same figures: no predictor can agree with a
measurement better than the measurement agrees with itself.

``main-job``: ``trainfree search --out DIR`` with its embedded defaults (4 minutes, gpt2,
zerolm vs latency and memory) on a fresh cache; prints evaluations, evaluations per second,
frontier size and how many frontier models were measured.

``repeatability``: each of ``-n`` random architectures measured twice, in fresh workers, the
whole sample once and then again (minutes apart, as a frontier model and its calibration
twin would be): how far two measurements of one model lie apart, which is the finest
difference a measured frontier can resolve (the search's ``--resolution``).

``drift``: the machine's speed drifts between sessions. Reads the calibration rows that
earlier ``accuracy --cache DIR`` runs measured (``--old DIR ...``, each with its ``-n``;
nothing is measured into them; an entry cached before measurements kept their time has its
file's modification time), measures the held-out sample and ``--fresh`` new calibration
models now, and judges on the held-out models the model fitted on the old rows alone, on
old + k fresh rows pooled as one session, and on the same rows with the sessions levelled
(the library's fit); prints how far the two sessions' measurements of the same held-out
models lie apart where the old cache has them.

``lts-budget``: LiteTransformerSearch's budget, 3,000 evaluations with population 100 (30
generations), with predicted costs; prints the wall time (LTS: under 3 hours on a laptop).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from trainfree import get_space
from trainfree.hardware import HardwareSettings, MeasurementCache, profile, profile_cached
from trainfree.hardware.calibration import calibration_sample, measured_row
from trainfree.hardware.costmodel import accuracy, fit_cost_model
from trainfree.search.settings import SEARCH_HARDWARE

HW = SEARCH_HARDWARE  # the search's defaults
SEQ = {"flexibert": 128}


def _settings(space: str) -> HardwareSettings:
    """The search's measurement settings at the space's sequence length."""
    return dataclasses.replace(HW, seq_len=SEQ.get(space, 192))


def _burn() -> None:  # pragma: no cover - a busy loop for --load
    while True:
        pass


def _rows(space, configs, hw, cache) -> list[dict]:
    rows = []
    for i, cfg in enumerate(configs):
        m = profile(space, cfg, hw) if cache is None else profile_cached(space, cfg, hw, cache)[0]
        row = measured_row(space, cfg, hw, m)
        if row:
            rows.append(row)
        print(f"\r  measured {i + 1}/{len(configs)}", end="", flush=True)
    print()
    return rows


def accuracy_cmd(args: argparse.Namespace) -> None:
    burner = None
    if args.load:
        burner = mp.get_context("spawn").Process(target=_burn, daemon=True)
        burner.start()
    cache = MeasurementCache(Path(args.cache) / ("load" if args.load else "quiet"))
    try:
        print(
            f"| space | cost | n fit | n held out | Spearman | median abs err | within 10% | CV Spearman | "
            f"CV within 10% |{' (other core busy)' if args.load else ''}"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        lines = []
        for name in args.space:
            space = get_space(name)
            hw = _settings(name)
            t0 = time.perf_counter()
            fit_rows = _rows(space, calibration_sample(space, args.n, seed=0), hw, cache)
            rng = np.random.default_rng(1)
            held = [space.sample(rng) for _ in range(args.held_out)]
            test_rows = _rows(space, held, hw, cache)
            # the library's model, and beside it the linear part alone (no shape correction)
            model = fit_cost_model(fit_rows)
            linear = fit_cost_model([{k: v for k, v in r.items() if k != "genes"} for r in fit_rows])
            rows = ([r["features"] for r in test_rows], [r["weights_mb"] for r in test_rows])
            pred = model.predict(*rows, [r["genes"] for r in test_rows])
            pred_linear = linear.predict(*rows)
            shape = "with shape correction" if model.correction else "linear: correction not kept"
            for cost, p, m, label in (
                ("latency_ms", pred, model, f"latency_ms ({shape})"),
                ("latency_ms", pred_linear, linear, "latency_ms (linear only)"),
                ("memory_mb", pred, model, "memory_mb"),
            ):
                y = np.array(
                    [
                        r[cost] if cost == "latency_ms" else r["weights_mb"] + r["activation_mb"]
                        for r in test_rows
                    ]
                )
                a = accuracy(p[cost], y)
                cv = m.accuracy[cost]
                lines.append(
                    f"| {name} | {label} | {model.n} | {a['n']} | {a['spearman']:.3f} | "
                    f"{100 * a['median_ape']:.1f}% | {100 * a['within_10pct']:.0f}% | {cv['spearman']:.3f} | "
                    f"{100 * cv['within_10pct']:.0f}% |"
                )
                print(lines[-1], flush=True)
            if args.remeasure:  # the same held-out models again: the noise ceiling
                again = _rows(space, held, hw, None)
                first = {r["key"]: r["latency_ms"] for r in test_rows}
                x = np.asarray([(first[r["key"]], r["latency_ms"]) for r in again if r["key"] in first])
                a = accuracy(x[:, 1], x[:, 0])
                print(
                    f"  {name} latency, measured again vs measured: Spearman {a['spearman']:.3f}, "
                    f"median |diff| {100 * a['median_ape']:.1f}%, within 10% {100 * a['within_10pct']:.0f}%",
                    flush=True,
                )
            print(
                f"  ({name}: {time.perf_counter() - t0:.0f} s, seq_len {hw.seq_len}; coefficients "
                f"{json.dumps({k: [round(c, 4) for c in v] for k, v in model.coef.items()})} "
                f"over {model.features})",
                flush=True,
            )
    finally:
        if burner is not None:
            burner.kill()


def _stored_rows(space, configs, hw, cache) -> list[dict]:
    """Rows for the configs that ``cache`` holds, without measuring anything."""
    rows = []
    for cfg in configs:
        m = cache.get(cache.key(space.name, space.config_to_json(cfg), hw))
        row = measured_row(space, cfg, hw, m) if m is not None else None
        if row:
            rows.append(row)
    return rows


def drift_cmd(args: argparse.Namespace) -> None:
    space, hw = get_space(args.space), _settings(args.space)
    if len(args.n) != len(args.old):
        sys.exit("-n: one calibration size per --old folder")
    rng = np.random.default_rng(1)
    held = [space.sample(rng) for _ in range(args.held_out)]
    now_cache = MeasurementCache(Path(args.cache) / "quiet")
    test = _rows(space, held, hw, now_cache)
    fresh = _rows(space, calibration_sample(space, max(args.fresh), seed=2), hw, now_cache)
    y = np.array([r["latency_ms"] for r in test])
    old = []
    for folder, n in zip(args.old, args.n, strict=True):
        cache = MeasurementCache(Path(folder) / "quiet")
        rows = _stored_rows(space, calibration_sample(space, n, seed=0), hw, cache)
        if len(rows) < 12:
            sys.exit(
                f"--old {folder}: {len(rows)} calibration rows cached; run accuracy --cache {folder} first"
            )
        old += rows
        then = {r["key"]: r["latency_ms"] for r in _stored_rows(space, held, hw, cache)}
        ratio = np.array([then[r["key"]] / r["latency_ms"] for r in test if r["key"] in then])
        if len(ratio):
            p10, p50, p90 = np.percentile(ratio, [10, 50, 90])
            print(
                f"{folder}: the same {len(ratio)} held-out models, then over now: "
                f"median {p50:.3f} (p10-p90 {p10:.3f}-{p90:.3f})"
            )

    def judged(label: str, rows: list[dict], levelled: bool = True) -> None:
        if not levelled:  # every row as if measured in one session
            rows = [{k: v for k, v in r.items() if k != "measured_at"} for r in rows]
        m = fit_cost_model(rows)
        p = m.predict(
            [r["features"] for r in test], [r["weights_mb"] for r in test], [r["genes"] for r in test]
        )
        a = accuracy(p["latency_ms"], y)
        print(
            f"| {label} | {a['spearman']:.3f} | {100 * a['median_ape']:.1f}% | "
            f"{100 * a['within_10pct']:.0f}% |"
        )

    print(
        f"| {args.space} latency, {len(test)} held out, fitted on | Spearman | median abs err | within 10% |"
    )
    print("|---|---|---|---|")
    judged(f"{len(old)} old rows, pooled as one session", old, levelled=False)
    judged(f"{len(old)} old rows, sessions levelled", old)
    for k in args.fresh:
        judged(f"{len(old)} old + {k} fresh, pooled as one session", old + fresh[:k], levelled=False)
        judged(f"{len(old)} old + {k} fresh, sessions levelled", old + fresh[:k])
    judged(f"{len(fresh)} fresh rows alone", fresh)


def main_job_cmd(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="trainfree-mainjob-") as tmp:
        env = {**os.environ, "TRAINFREE_CACHE": str(Path(tmp) / "cache"), "COLUMNS": "80"}
        out = Path(tmp) / "quickstart"
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "trainfree", "search", "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        print(res.stdout[-3000:])
        frontier = json.loads((out / "frontier.json").read_text())
        n = frontier["evaluations"]
        measured = sum(1 for m in frontier["models"] if m.get("costs") == "measured")
        print(
            f"main job: exit {res.returncode}, {wall:.0f} s wall, {n} architectures evaluated "
            f"({n / wall:.1f}/s), frontier {len(frontier['models'])} models, {measured} measured, "
            f"{frontier['unmeasured_entrants']} predicted entrants left unmeasured, "
            f"costs {frontier['costs']}"
        )
        end = frontier.get("end_phase")
        if end:
            print(
                f"  end phase: reserve {end['reserve_s']} s (churn {end['churn_at_stop']}, overhead "
                f"{end['overhead_at_stop']}); measured {end['measured']} in {end['seconds']} s, "
                f"churn at the end {end['churn_at_end']}"
            )
        predictor = json.loads((out / "predictor.json").read_text())
        for name, acc in (
            ("held out (5-fold CV)", predictor["held_out_accuracy"]),
            ("frontier, predicted before measured", predictor["frontier_accuracy"]),
        ):
            for cost in ("latency_ms", "memory_mb"):
                a = acc.get(cost)
                if a:
                    print(
                        f"  {name}: {cost} n {a['n']}, Spearman {a['spearman']:.3f}, median |err| "
                        f"{100 * a['median_ape']:.1f}%, within 10% {100 * a['within_10pct']:.0f}%"
                    )


def lts_budget_cmd(args: argparse.Namespace) -> None:
    from trainfree.search import SearchRun, SearchSettings

    with tempfile.TemporaryDirectory(prefix="trainfree-lts-") as tmp:
        os.environ["TRAINFREE_CACHE"] = str(Path(tmp) / "cache")
        s = SearchSettings(space="gpt2", budget="3000", pop_size=100, hardware=HW, workers=args.workers)
        t0 = time.perf_counter()
        run = SearchRun.open(Path(tmp) / "run", s)
        try:
            result = run.run()
        finally:
            run.close()
        wall = time.perf_counter() - t0
        measured = sum(1 for m in result.frontier if m.get("costs") == "measured")
        print(
            f"LTS budget: {result.evaluations} evaluations, {result.generations} generations of "
            f"population 100 in {wall:.0f} s ({wall / 60:.1f} min); frontier {len(result.frontier)} "
            f"models, {measured} measured; costs {result.costs}"
        )


def repeatability_cmd(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    hw = _settings(args.space)
    configs = [space.sample(np.random.default_rng(args.seed + i)) for i in range(args.n)]
    rounds = []
    for r in range(2):
        rounds.append([profile(space, c, hw) for c in configs])
        print(f"  round {r + 1}/2 measured", flush=True)
    pairs = [(a, b) for a, b in zip(*rounds, strict=True) if a.ok and b.ok]
    for name in ("latency_ms", "memory_mb"):
        x = np.array([[getattr(a, name), getattr(b, name)] for a, b in pairs])
        rel = np.abs(x[:, 0] - x[:, 1]) / x.mean(axis=1)
        # the Spearman of one measurement against the other: the most a predictor judged on
        # measurements of these models can reach
        rho = spearmanr(x[:, 0], x[:, 1]).statistic
        print(
            f"{args.space} {name}: {len(pairs)} models measured twice; |difference| median "
            f"{100 * np.median(rel):.1f}%, 90th percentile {100 * np.percentile(rel, 90):.1f}%, "
            f"max {100 * rel.max():.1f}%; Spearman round 1 vs round 2 {rho:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--space", nargs="+", default=["gpt2", "transxl", "flexibert"])
    a.add_argument("-n", type=int, default=80, help="calibration architectures")
    a.add_argument("--held-out", type=int, default=40)
    a.add_argument("--load", action="store_true", help="keep another core busy meanwhile")
    a.add_argument("--remeasure", action="store_true", help="measure the held-out models again")
    a.add_argument("--cache", default="runs/bench_costs/cache")
    sub.add_parser("main-job")
    rep = sub.add_parser("repeatability")
    rep.add_argument("--space", default="gpt2")
    rep.add_argument("-n", type=int, default=20)
    rep.add_argument("--seed", type=int, default=100)
    d = sub.add_parser("drift")
    d.add_argument("--space", default="gpt2")
    d.add_argument("--old", nargs="+", required=True, help="the --cache of earlier accuracy runs")
    d.add_argument("-n", type=int, nargs="+", default=[80], help="their calibration sizes")
    d.add_argument("--held-out", type=int, default=40)
    d.add_argument("--fresh", type=int, nargs="+", default=[4, 8, 16])
    d.add_argument("--cache", default="runs/bench_costs/drift-cache", help="measurements made now")
    lts = sub.add_parser("lts-budget")
    lts.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    commands = {
        "accuracy": accuracy_cmd,
        "main-job": main_job_cmd,
        "lts-budget": lts_budget_cmd,
        "repeatability": repeatability_cmd,
        "drift": drift_cmd,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
