"""Speed and memory of the zerolm proxy against merely building the models, per space.

    .venv/bin/python benchmarks/bench_zerolm.py [--n 40] [--threads 2]

For each benchmark, one fresh worker process builds N architectures (the first N of the
benchmark's own list) and reports median milliseconds per model; a second fresh worker builds
and scores the same N with ``zerolm`` (cold spectrum cache, as in a real run). Each worker
reports its peak resident memory (``ru_maxrss``), so the two are measured the same way and
neither is polluted by the other. Ratios are against the build-only worker of the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time

SETS = [
    ("flexibert", "nas-bench-bert"),
    ("flexibert-published", "nas-bench-bert"),
    ("gpt2", "lts/random_GPT2_wt103"),
    ("transxl", "lts/random_TransXL_wt103"),
]


def _worker(space: str, folder: str, n: int, threads: int, score: bool, out: mp.Queue) -> None:
    import torch

    from trainfree import get_proxy
    from trainfree.bench import load_benchmark
    from trainfree.data import data_root
    from trainfree.proxies import ProxyContext

    torch.set_num_threads(threads)
    bench = load_benchmark(space, data_root() / folder)
    proxy = get_proxy("zerolm")
    times = []
    for entry in bench.entries[:n]:
        t0 = time.perf_counter()
        ctx = ProxyContext(seed=0)
        ctx.model(bench.space, entry.config)
        if score:
            proxy.components(bench.space, entry.config, ctx)
        times.append(time.perf_counter() - t0)
        del ctx
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((statistics.median(times) * 1000, sum(times), peak_mb))


def run(space: str, folder: str, n: int, threads: int, score: bool) -> tuple[float, float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(space, folder, n, threads, score, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="architectures per space")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.n} architectures per space, {args.threads} threads, fresh worker process per row")
    header = (
        f"{'space':20s} {'build ms':>9s} {'zerolm ms':>10s} {'ratio':>6s} {'build MB':>9s} {'zerolm MB':>10s}"
    )
    print(header)
    for space, folder in SETS:
        b_ms, _, b_mb = run(space, folder, args.n, args.threads, score=False)
        z_ms, _, z_mb = run(space, folder, args.n, args.threads, score=True)
        print(f"{space:20s} {b_ms:9.1f} {z_ms:10.1f} {z_ms / b_ms:6.2f} {b_mb:9.0f} {z_mb:10.0f}")


if __name__ == "__main__":
    main()
