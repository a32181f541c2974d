"""The Ray executor against the local one, on the same machine.

    python benchmarks/bench_ray.py overhead [--n 200] [--proxy zerolm --proxy params]
    python benchmarks/bench_ray.py dispatch [--n 1000]
    python benchmarks/bench_ray.py measure [--n 10]
    python benchmarks/bench_ray.py all --json ray.json

``overhead``: score the first ``--n`` architectures of the GPT-2 benchmark with the proxies
(default: zerolm, which builds every model and runs it, and params, analytic) with the local
pool (one worker per CPU) and with Ray (a local Ray instance started by the executor, one
task per CPU), both uncached; prints the wall times, their ratio (Ray start-up excluded and
included) and the cost of one task on each side. ``dispatch``: the head's ceiling, the
analytic proxy ``params`` only (a task of about a millisecond), as many tasks per second as
this driver gets through Ray. ``measure``: ``--n`` measurements on this machine (local, each
in a fresh forkserver child) against ``--measure-on dev`` on a one-node device of a local Ray
cluster on the same machine (each in a fresh Ray worker); seconds per measurement and the
figures' agreement. The scaling paragraph of docs/scale-out.md is computed from these.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

os.environ.setdefault("TRAINFREE_CACHE", tempfile.mkdtemp(prefix="tf-bench-ray-"))

from trainfree.bench.harness import run_benchmark
from trainfree.bench.loaders import load_benchmark
from trainfree.executors import make_executor
from trainfree.hardware import profile
from trainfree.search.settings import SEARCH_HARDWARE

HW = SEARCH_HARDWARE  # the search's defaults
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _bench(n: int) -> Any:
    full = load_benchmark("gpt2")
    return dataclasses.replace(full, entries=full.entries[:n])


def overhead(n: int, proxies: list[str]) -> dict[str, Any]:
    bench = _bench(n)
    print(f"overhead: {n} gpt2 architectures x {proxies}, {CPUS} CPUs", flush=True)
    t0 = time.perf_counter()
    local = run_benchmark(bench, proxies, workers=CPUS)
    local_s = time.perf_counter() - t0
    print(f"  local pool ({CPUS} workers): {local_s:.1f} s", flush=True)
    t0 = time.perf_counter()
    ex = make_executor("ray")
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        remote = run_benchmark(bench, proxies, workers=CPUS, executor=ex)
        ray_s = time.perf_counter() - t0
    finally:
        ex.close()
    same = all(np.array_equal(local.runs[p].scores, remote.runs[p].scores, equal_nan=True) for p in proxies)
    compute = sum(float(np.nansum(r.seconds)) for r in local.runs.values())
    out = {
        "n": n,
        "proxies": proxies,
        "cpus": CPUS,
        "local_s": local_s,
        "ray_s": ray_s,
        "ray_start_s": start_s,
        "ratio": ray_s / local_s,
        "ratio_with_start": (ray_s + start_s) / local_s,
        "task_compute_s": compute / n,  # the proxies' own time per architecture (one core)
        "local_per_task_s": local_s * CPUS / n,
        "ray_per_task_s": ray_s * CPUS / n,
        "same_scores": same,
    }
    print(
        f"  ray ({CPUS} CPUs): {ray_s:.1f} s (+{start_s:.1f} s start-up); ratio {out['ratio']:.3f} "
        f"({out['ratio_with_start']:.3f} with start-up); same scores: {same}",
        flush=True,
    )
    return out


def dispatch(n: int) -> dict[str, Any]:
    full = load_benchmark("gpt2")
    entries = (full.entries * (n // len(full.entries) + 1))[:n]
    bench = dataclasses.replace(full, entries=entries)
    ex = make_executor("ray")
    try:
        run_benchmark(_bench(2 * CPUS), ["params"], workers=CPUS, executor=ex)  # warm the workers
        t0 = time.perf_counter()
        run_benchmark(bench, ["params"], workers=CPUS, executor=ex)
        wall = time.perf_counter() - t0
    finally:
        ex.close()
    print(f"dispatch: {n} analytic tasks in {wall:.1f} s: {n / wall:.0f} tasks/s through the head")
    return {"n": n, "wall_s": wall, "tasks_per_s": n / wall}


def _measure_ray(space: Any, configs: list, cluster_address: str) -> tuple[list, float, float]:
    t0 = time.perf_counter()
    ex = make_executor(address=cluster_address, measure_on="dev")
    start = time.perf_counter() - t0
    got: dict[int, Any] = {}
    try:
        t0 = time.perf_counter()
        ex.measure(space, configs, HW, None, 0, lambda i, r: got.__setitem__(i, r.measurement))
        wall = time.perf_counter() - t0
    finally:
        ex.close()
    return [got[i] for i in range(len(configs))], wall, start


def measure_throughput(n: int) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    full = _bench(n)
    space, configs = full.space, [e.config for e in full.entries]
    t0 = time.perf_counter()
    local = [profile(space, c, HW) for c in configs]
    local_s = time.perf_counter() - t0
    store = 100 * 1024 * 1024
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=0, object_store_memory=store, resources={"dev": 1})
    try:
        remote, ray_s, start = _measure_ray(space, configs, cluster.address)
    finally:
        cluster.shutdown()
    ok = [(a, b) for a, b in zip(local, remote, strict=True) if a.ok and b.ok]
    lat = [b.latency_ms / a.latency_ms - 1 for a, b in ok]
    mem = [b.memory_mb / a.memory_mb - 1 for a, b in ok]
    out = {
        "n": n,
        "local_s_per_measurement": local_s / n,
        "ray_s_per_measurement": ray_s / n,
        "ray_connect_s": start,
        "median_latency_diff": statistics.median(lat) if lat else None,
        "median_memory_diff": statistics.median(mem) if mem else None,
        "both_ok": len(ok),
    }
    print(
        f"measure: {n} gpt2 models (seq 192, 1 warm-up, 5 runs): local {out['local_s_per_measurement']:.2f} "
        f"s each, --measure-on {out['ray_s_per_measurement']:.2f} s each; Ray/local median latency "
        f"{100 * (out['median_latency_diff'] or 0):+.1f}%, "
        f"memory {100 * (out['median_memory_diff'] or 0):+.1f}%",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["overhead", "dispatch", "measure", "all"])
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--proxy", action="append", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {}
    if args.what in ("overhead", "all"):
        out["overhead"] = overhead(args.n or 200, args.proxy or ["zerolm", "params"])
    if args.what in ("dispatch", "all"):
        out["dispatch"] = dispatch(args.n if args.what == "dispatch" and args.n else 1000)
    if args.what in ("measure", "all"):
        out["measure"] = measure_throughput(args.n if args.what == "measure" and args.n else 10)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
