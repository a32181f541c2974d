"""NSGA-II against random search with the same evaluation budget and seeds, and where the
time of one evaluation goes.

    python benchmarks/bench_search.py                      # gpt2, zerolm vs latency+memory
    python benchmarks/bench_search.py --objectives params --budget 120

For each seed, both algorithms search the same space with the same budget (distinct
architectures evaluated); the hypervolume of each final frontier is computed on a common
scale (every objective min-max normalised over all points of all runs, reference point 1.1).
Hardware measurements are shared through a fresh cache in the output folder, so an
architecture both algorithms visit is measured once and both see the same figure; the
seconds per evaluation are taken from the runs' own records (cache hits excluded).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trainfree.hardware import HardwareSettings
from trainfree.search import SearchRun, SearchSettings
from trainfree.search.pareto import COST_FIELDS, hypervolume, nondominated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--proxy", default="zerolm")
    ap.add_argument("--objectives", default="latency,memory")
    ap.add_argument("--budget", default="48", help="evaluations per run")
    ap.add_argument("--pop-size", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="runs/bench_search")
    args = ap.parse_args()

    out = Path(args.out)
    os.environ["TRAINFREE_CACHE"] = str(out / "cache")  # shared by all runs of this benchmark only
    costs = [o.strip() for o in args.objectives.split(",")]
    hw = HardwareSettings(seq_len=args.seq_len, repeats=args.repeats, warmup=1)
    tables: dict[tuple[str, int], pd.DataFrame] = {}
    walls: dict[tuple[str, int], float] = {}
    for seed in args.seeds:
        for algorithm in ("nsga2", "random"):
            run_dir = out / f"{algorithm}_seed{seed}"
            t0 = time.perf_counter()
            if (run_dir / "settings.json").exists():
                run = SearchRun.resume(run_dir)
            else:
                settings = SearchSettings(
                    space=args.space,
                    proxy=args.proxy,
                    objectives=costs,
                    hardware=hw,
                    budget=args.budget,
                    pop_size=args.pop_size,
                    seed=seed,
                    algorithm=algorithm,
                )
                run = SearchRun.create(run_dir, settings)
            res = run.run()
            walls[(algorithm, seed)] = time.perf_counter() - t0
            tables[(algorithm, seed)] = pd.read_csv(run_dir / "evaluated.csv")
            print(
                f"{algorithm:6s} seed {seed}: {res.evaluations} evaluated, frontier {len(res.frontier)}, "
                f"{walls[(algorithm, seed)]:.0f} s"
            )

    def matrix(df: pd.DataFrame) -> np.ndarray:
        ok = df[df["feasible"]]
        return np.column_stack([-ok[args.proxy]] + [ok[COST_FIELDS[c]] for c in costs]).astype(float)

    allF = np.vstack([matrix(df) for df in tables.values()])
    ideal, nadir = np.nanmin(allF, axis=0), np.nanmax(allF, axis=0)
    hv = {k: hypervolume(matrix(df)[nondominated(matrix(df))], ideal, nadir) for k, df in tables.items()}
    print(
        f"\nhypervolume ({args.proxy} vs {', '.join(costs)}, budget {args.budget}, "
        f"population {args.pop_size}, seeds {args.seeds}):"
    )
    print("| seed | NSGA-II | random | ratio |")
    print("|---|---|---|---|")
    for seed in args.seeds:
        a, b = hv[("nsga2", seed)], hv[("random", seed)]
        print(f"| {seed} | {a:.4f} | {b:.4f} | {a / b:.3f} |")
    mean_a = np.mean([hv[("nsga2", s)] for s in args.seeds])
    mean_b = np.mean([hv[("random", s)] for s in args.seeds])
    print(f"| mean | {mean_a:.4f} | {mean_b:.4f} | {mean_a / mean_b:.3f} |")

    every = pd.concat(tables.values())
    split = ["seconds_proxy"] + [c for c in ("seconds_memory", "seconds_latency") if c in every]
    fresh = (
        every[~every["hardware_cached"].fillna(False).astype(bool)] if "hardware_cached" in every else every
    )
    print("\nseconds per evaluated architecture (median / mean, over runs; hardware cache hits excluded):")
    for col in split:
        print(f"  {col.removeprefix('seconds_'):8s} {fresh[col].median():.3f} / {fresh[col].mean():.3f}")
    total = fresh[split].sum(axis=1)
    print(f"  {'total':8s} {total.median():.3f} / {total.mean():.3f}")
    n = sum(len(df) for df in tables.values())
    print(f"  wall time per evaluation incl. search overhead and outputs: {sum(walls.values()) / n:.3f} s")


if __name__ == "__main__":
    main()
