"""Search at equal wall time: predicted against measured costs, NSGA-II against random search.

    python benchmarks/bench_search.py                       # 10 minutes x 3 seeds x 3 variants
    python benchmarks/bench_search.py --minutes 4 --seeds 0 1

Variants (each seed, each with a fresh cache of its own, so no run profits from another's
measurements or calibration):

- ``predicted``: ``--costs predicted`` (the default), NSGA-II;
- ``measured``: ``--costs measured``, NSGA-II (every architecture measured);
- ``random``: ``--costs predicted``, random search (the baseline optimiser).

The figure of merit is the hypervolume of each run's *measured* frontier: only frontier
models whose latency and memory were measured on this machine count (with predicted costs the
run measures every frontier model before it ends). All runs are scaled together (every
objective min-max normalised over the frontier points of all runs, reference point 1.1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from trainfree.objectives import OBJECTIVES
from trainfree.search import SearchRun, SearchSettings
from trainfree.search.pareto import hypervolume, nondominated
from trainfree.search.settings import SEARCH_HARDWARE

VARIANTS = {
    "predicted": ("predicted", "nsga2"),
    "measured": ("measured", "nsga2"),
    "random": ("predicted", "random"),
}


def run_variant(out: Path, variant: str, seed: int, args: argparse.Namespace) -> dict:
    costs, algorithm = VARIANTS[variant]
    run_dir = out / f"{variant}_seed{seed}"
    os.environ["TRAINFREE_CACHE"] = str(out / "caches" / f"{variant}_seed{seed}")
    settings = SearchSettings(
        space=args.space,
        objectives=args.objectives.split(","),
        hardware=dataclasses.replace(SEARCH_HARDWARE, seq_len=args.seq_len),
        costs=costs,
        algorithm=algorithm,
        budget=f"{args.minutes}m",
        seed=seed,
        workers=args.workers,
    )
    t0 = time.perf_counter()
    run = SearchRun.open(run_dir, settings)
    try:
        result = run.run()
    finally:
        run.close()
    models = json.loads((run_dir / "frontier.json").read_text())["models"]
    return {
        "wall": time.perf_counter() - t0,
        "evaluations": result.evaluations,
        "costs": result.costs,
        "frontier": [m for m in models if m.get("costs", "measured") == "measured"],
        "unmeasured": sum(1 for m in models if m.get("costs") == "predicted"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="gpt2")
    ap.add_argument("--objectives", default="latency,memory")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seq-len", type=int, default=192)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/bench_search")
    args = ap.parse_args()
    out = Path(args.out)
    costs = args.objectives.split(",")
    results = {}
    for seed in args.seeds:
        for variant in args.variants:
            r = run_variant(out, variant, seed, args)
            results[(variant, seed)] = r
            print(
                f"{variant:9s} seed {seed}: {r['evaluations']:5d} evaluated in {r['wall']:.0f} s "
                f"(costs {r['costs']}), measured frontier {len(r['frontier'])}, unmeasured {r['unmeasured']}",
                flush=True,
            )

    def matrix(models: list[dict]) -> np.ndarray:
        fields = [OBJECTIVES[c].field for c in costs]
        return np.array([[-m["zerolm"], *[m[f] for f in fields]] for m in models], dtype=float)

    every = np.vstack([matrix(r["frontier"]) for r in results.values() if r["frontier"]])
    ideal, nadir = every.min(axis=0), every.max(axis=0)
    hv = {}
    for key, r in results.items():
        F = matrix(r["frontier"]) if r["frontier"] else np.zeros((0, len(ideal)))
        hv[key] = hypervolume(F[nondominated(F)], ideal, nadir) if len(F) else 0.0
    print(
        f"\nhypervolume of the measured frontier ({args.space}, zerolm vs {', '.join(costs)}, "
        f"{args.minutes:g} min each, common scale)"
    )
    print("| seed | " + " | ".join(args.variants) + " | predicted/measured | predicted/random |")
    print("|---" * (len(args.variants) + 3) + "|")
    for seed in args.seeds:
        row = [hv.get((v, seed), float("nan")) for v in args.variants]
        pm = hv.get(("predicted", seed), np.nan) / hv.get(("measured", seed), np.nan)
        pr = hv.get(("predicted", seed), np.nan) / hv.get(("random", seed), np.nan)
        print(f"| {seed} | " + " | ".join(f"{x:.4f}" for x in row) + f" | {pm:.3f} | {pr:.3f} |")
    means = {v: np.mean([hv[(v, s)] for s in args.seeds]) for v in args.variants}
    pm = means.get("predicted", np.nan) / means.get("measured", np.nan)
    pr = means.get("predicted", np.nan) / means.get("random", np.nan)
    print("| mean | " + " | ".join(f"{means[v]:.4f}" for v in args.variants) + f" | {pm:.3f} | {pr:.3f} |")
    evals = {v: np.mean([results[(v, s)]["evaluations"] for s in args.seeds]) for v in args.variants}
    print("mean architectures evaluated: " + ", ".join(f"{v} {n:.0f}" for v, n in evals.items()))


if __name__ == "__main__":
    main()
