"""The main job on a machine that is doing something else (issue 25), quiet and loaded in one run.

    python benchmarks/bench_busy.py timing                 # A/B of the timing statistics
    python benchmarks/bench_busy.py main-job --loads 0 1 2 # the README's search, 0/1/2 busy loops
    python benchmarks/bench_busy.py main-job --loads 1 --twice  # and the frontier re-measured twice

``timing``: the same GPT-2 architectures measured with the search's settings (1 thread, 192
tokens, 3 timed runs and up to 9 while they disagree) on the quiet machine, then with 1 and
2 busy loops (``python -c 'while True: pass'``) beside it. Each measurement keeps every run's
wall and on-CPU time, so the statistics are compared on the same runs: the former one (the
median wall time of the first 3 runs), the median wall time of the adaptive runs, and the
median on-CPU time of the adaptive runs (what the search reports now). Each loaded figure
is judged against the same statistic on the quiet machine: median |ratio - 1| and the share
within 10%.

``main-job``: ``trainfree search --out DIR`` with its embedded defaults (4 minutes), with a
fresh cache, under each load; then, with the machine quiet again, every frontier model is
measured once more with the same settings and compared with the frontier's figure.

No helper or other job should run meanwhile: the quiet figures must be quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trainfree import get_space
from trainfree.hardware import HardwareSettings, costmodel, profile
from trainfree.hardware.calibration import measured_row
from trainfree.search.settings import SEARCH_HARDWARE

BUSY = [sys.executable, "-c", "while True: pass"]


@contextmanager
def busy_loops(n: int):
    procs = [subprocess.Popen(BUSY) for _ in range(n)]
    time.sleep(0.5 if n else 0.0)
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _statistics(m) -> dict[str, float]:
    wall, cpu = np.asarray(m.runs_ms), np.asarray(m.cpu_runs_ms)
    return {
        "former (wall, first 3)": float(np.median(wall[:3])),
        "wall, adaptive": float(np.median(wall)),
        "on-CPU, adaptive (now)": float(np.median(cpu)),
    }


def _judge(loaded: list[float], quiet: list[float]) -> str:
    err = np.abs(np.asarray(loaded) / np.asarray(quiet) - 1)
    return f"median |r-1| {100 * np.median(err):5.1f}%, within 10% {100 * np.mean(err <= 0.1):3.0f}%"


def timing_cmd(args: argparse.Namespace) -> None:
    space = get_space("gpt2")
    rng = np.random.default_rng(args.seed)
    configs = [space.sample(rng) for _ in range(args.n)]
    hw = SEARCH_HARDWARE
    figures: dict[int, list[dict[str, float]]] = {}
    rows: dict[int, list] = {}
    extra: dict[int, list[float]] = {}
    for load in [0, *args.loads]:
        with busy_loops(load):
            ms = [profile(space, c, hw) for c in configs]
        figures[load] = [_statistics(m) for m in ms]
        extra[load] = [len(m.runs_ms) for m in ms]
        inter = np.nanmean([m.interrupted_share for m in ms])
        print(
            f"{load} busy loops: runs per model {np.mean(extra[load]):.1f}, interrupted {100 * inter:.0f}%, "
            f"not repeatable {sum(not m.repeatable for m in ms)}/{len(ms)}",
            flush=True,
        )
        rows[load] = [measured_row(space, c, hw, m) for c, m in zip(configs, ms, strict=True)]
    print(f"\n{args.n} GPT-2 architectures, search settings; each loaded figure vs the same statistic quiet:")
    for load in args.loads:
        for name in figures[0][0]:
            quiet = [f[name] for f in figures[0]]
            print(f"  {load} busy | {name:24s} | {_judge([f[name] for f in figures[load]], quiet)}")
    print("\ncost model fitted on each machine's figures (5-fold), predictions vs the quiet measurement:")
    for load in [0, *args.loads]:
        for rounds, name in ((0, "least squares"), (costmodel.ROBUST_ROUNDS, "robust (Huber)")):
            print(f"  {load} busy | {name:24s} | {_fit_ab(rows[load], rows[0], rounds)}")


def _fit_ab(rows: list, quiet: list, rounds: int) -> str:
    """Fit on 4/5 of ``rows`` (with ``rounds`` robust reweightings), predict the other fifth,
    judge against ``quiet``'s latency of the same models."""
    from sklearn.model_selection import KFold

    ok = [i for i, (r, q) in enumerate(zip(rows, quiet, strict=True)) if r and q]
    pred, truth = np.zeros(len(ok)), np.array([quiet[i]["latency_ms"] for i in ok])
    saved = costmodel.ROBUST_ROUNDS
    costmodel.ROBUST_ROUNDS = rounds
    try:
        for train, test in KFold(5, shuffle=True, random_state=0).split(ok):
            model = costmodel.fit_cost_model([rows[ok[i]] for i in train])
            held = [rows[ok[i]] for i in test]
            got = model.predict([r["features"] for r in held], [r["weights_mb"] for r in held])
            pred[test] = got["latency_ms"]
    finally:
        costmodel.ROBUST_ROUNDS = saved
    err = np.abs(pred / truth - 1)
    return f"median |err| {100 * np.median(err):5.1f}%, within 10% {100 * np.mean(err <= 0.1):3.0f}%"


def _run_main_job(out: Path, env: dict[str, str], load: int) -> tuple[dict, float]:
    with busy_loops(load):
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "trainfree", "search", "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
    if res.returncode:
        print(res.stderr[-2000:])
    frontier = json.loads((out / "frontier.json").read_text())
    return frontier, wall


def _noise_floor(space, models: list[dict], hw: HardwareSettings, first: dict[str, float]) -> None:
    """The frontier measured once more, quiet: how far two quiet measurements of the same
    models are apart (``first``: the first re-measure's latency by config), the floor under
    any agreement of the run's figures with one re-measure."""
    ratios = []
    for m in models:
        cfg = space.config_from_dict(m["config"])
        again = profile(space, cfg, hw)
        key = space.config_to_json(cfg)
        if again.ok and key in first:
            ratios.append(first[key] / again.latency_ms)
    r = np.asarray(ratios)
    print(
        f"    the frontier re-measured twice, quiet: second / first median {np.median(1 / r):.3f}, "
        f"{100 * np.mean(np.abs(r - 1) <= 0.1):.0f}% within 10% of each other (n {len(r)})"
    )


def _remeasure(
    space_name: str,
    values: dict,
    models: list[dict],
    hw: HardwareSettings,
    records: dict[str, dict],
    twice: bool = False,
) -> tuple[str, str]:
    """Each frontier model measured again here; also the reference kernel's ratio over the
    same two measurements (``records``: the run's records by config), to see whether the
    machine's speed moved between them; ``twice``: then once more (:func:`_noise_floor`)."""
    space = get_space(space_name, **values)
    lat, mem, ref = [], [], []
    first: dict[str, float] = {}
    for m in models:
        cfg = space.config_from_dict(m["config"])
        again = profile(space, cfg, hw)
        if again.ok:
            first[space.config_to_json(cfg)] = again.latency_ms
            lat.append(m["latency_ms"] / again.latency_ms)
            mem.append(m["memory_mb"] / again.memory_mb)
            before = records.get(space.config_to_json(cfg), {}).get("reference_ms")
            now = getattr(again, "reference_ms", np.nan)  # a release before the reference kernel
            ref.append(before / now if before else np.nan)
    lat_r, mem_r, ref_r = np.asarray(lat), np.asarray(mem), np.asarray(ref)
    ok = np.isfinite(ref_r)
    if ok.sum() > 2:
        rho = float(np.corrcoef(lat_r[ok], ref_r[ok])[0, 1])
        levelled = lat_r[ok] / ref_r[ok]
        print(
            f"    reference kernel, run / re-measure: median {np.median(ref_r[ok]):.3f}; its correlation "
            f"with the latency ratio {rho:.2f}; latency levelled by it: median {np.median(levelled):.3f}, "
            f"{100 * np.mean(np.abs(levelled - 1) <= 0.1):.0f}% within 10%"
        )

    if twice:
        _noise_floor(space, models, hw, first)

    def show(r: np.ndarray) -> str:
        return f"{np.median(r):.3f}, {100 * np.mean(np.abs(r - 1) <= 0.1):.0f}% within 10%"

    return show(lat_r), show(mem_r)


def _verdict(frontier: dict) -> str:
    load = frontier.get("machine_load")  # None: a release before it was recorded
    return "-" if load is None else ("busy" if load["busy"] else "quiet")


def _time_outputs(out: Path) -> float:
    """Seconds to write a finished run's outputs (what the budget keeps back for them)."""
    from trainfree.search import SearchRun

    run = SearchRun.open(out)
    try:
        t0 = time.perf_counter()
        run.write_outputs()
        return time.perf_counter() - t0
    finally:
        run.close()


def main_job_cmd(args: argparse.Namespace) -> None:
    rows = []
    for load in args.loads:
        with tempfile.TemporaryDirectory(prefix="trainfree-busy-") as tmp:
            env = {**os.environ, "TRAINFREE_CACHE": str(Path(tmp) / "cache"), "COLUMNS": "80"}
            out = Path(tmp) / "quickstart"
            frontier, wall = _run_main_job(out, env, load)
            predictor = json.loads((out / "predictor.json").read_text())
            held = predictor["held_out_accuracy"]["latency_ms"]
            settings = json.loads((out / "settings.json").read_text())
            hw = HardwareSettings(**settings["hardware"])
            write_s = _time_outputs(out)
            print(f"    writing the outputs again took {write_s:.2f} s (quiet)")
            records = {}
            for line in (out / "evaluations.jsonl").read_text().splitlines():
                rec = json.loads(line)
                records[rec["key"]] = rec
            if args.keep:
                shutil.copytree(out, Path(args.keep) / f"load{load}", dirs_exist_ok=True)
            quiet_lat, quiet_mem = _remeasure(
                settings["space"], settings["space_values"], frontier["models"], hw, records, args.twice
            )
            models = frontier["models"]
            measured = sum(m["costs"] == "measured" for m in models)
            budget = 240.0
            row = (
                f"| {load} | {frontier['evaluations']:,} | {wall:.1f} s ({wall - budget:+.1f}) | "
                f"{len(models)} ({measured} measured) | n {held['n']}, Spearman {held['spearman']:.3f}, "
                f"{100 * held['median_ape']:.1f}%, {100 * held['within_10pct']:.0f}% within 10% | "
                f"{quiet_lat} | {quiet_mem} | {_verdict(frontier)} |"
            )
            print(row, flush=True)
            print(f"    machine_load: {frontier.get('machine_load')}; note: {frontier['cost_model_note']!r}")
            rows.append(row)
    print(
        "\n| busy loops | architectures | wall (vs 240 s) | frontier | calibration, latency held out "
        "| frontier latency / quiet re-measure (median, share) | memory, likewise | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("timing")
    t.add_argument("-n", type=int, default=20)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--loads", type=int, nargs="+", default=[1, 2])
    m = sub.add_parser("main-job")
    m.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2])
    m.add_argument("--keep", help="copy each run directory here")
    m.add_argument("--twice", action="store_true", help="re-measure the frontier twice (the noise floor)")
    args = p.parse_args()
    {"timing": timing_cmd, "main-job": main_job_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
