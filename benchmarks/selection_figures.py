"""Selection regret and frontier figures (``bench --frontier``) on every shipped benchmark.

For ``params``, ``decoder_params``, ``flops``, ``zerolm`` and ``param_mix`` (label-free
default, ``--alpha heuristic``) on all architectures (on ``gpt2`` and ``transxl``, whose
default balance was fitted on the benchmark itself, every row on the default's held-out halves),
against FLOPs and parameter-count budgets; then ``zerolm`` and ``param_mix`` with ``--alpha
fit:50``, judged on the held-out architectures of each of the 20 splits only, beside every other
proxy on the same splits.
First, a check against the figures the issue's author measured independently (log-FLOPs
budgets; ``param_mix`` with alpha 0.5 and a forced aggregation), with ties in the score
broken by benchmark order as they were (``ties="first"``) and averaged as the library does.
Scores come from the score cache (``$TRAINFREE_CACHE``) when present; one worker.

    python benchmarks/selection_figures.py [--proxy EXTRA ...]   # e.g. --proxy logsynflow
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings

import numpy as np

from trainfree.bench.harness import run_benchmark
from trainfree.bench.loaders import load_benchmark
from trainfree.bench.selection import benchmark_costs, cells, judge_runs, selection_regret
from trainfree.proxies.balance import choose, combine, parse_alpha
from trainfree.runtime.score_cache import ScoreCache

SPACES = ("gpt2", "transxl", "flexibert", "flexibert-published")
PROXIES = ["params", "decoder_params", "flops", "zerolm", "param_mix"]
COSTS = ("flops", "params")
#: the issue author's figures (log-FLOPs budgets): decoder_params, param_mix sum, param_mix layer
ISSUE = {"gpt2": (1.50, 1.76, 3.29), "transxl": (1.05, 1.05, 2.09), "flexibert": (4.3, 2.3, 1.3)}


def check(bench, run, costs) -> str:
    truth = np.array([e.ground_truth for e in bench.entries])
    comps = run.runs["param_mix"].components
    balance = choose(parse_alpha("0.5"), comps, space=bench.space)
    vectors = [run.runs["decoder_params"].scores] + [
        combine(comps, dataclasses.replace(balance, aggregate=a)) for a in ("sum", "layer")
    ]
    out = []
    for ties in ("first", "mean"):
        r = [selection_regret(v, truth, costs["flops"], bench.higher_is_better, ties=ties) for v in vectors]
        out.append(" / ".join(f"{np.nanmean(x):.2f}" for x in r))
    return f"| {bench.space.name} | {' / '.join(map(str, ISSUE[bench.space.name]))} | {out[0]} | {out[1]} |"


def front(selection) -> str:
    return ", ".join(cells(selection)[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", action="append", default=[], help="more proxies (gradient baselines)")
    parser.add_argument("--space", action="append", choices=SPACES, help="only these benchmarks (repeat)")
    args = parser.parse_args()
    spaces = tuple(args.space or SPACES)
    warnings.simplefilter("ignore")
    names = PROXIES + [p for p in args.proxy if p not in PROXIES]
    cache = ScoreCache()
    full: dict[str, dict] = {}
    held: dict[str, dict] = {}
    checks = []
    for space in spaces:
        bench = load_benchmark(space)
        truth = np.array([e.ground_truth for e in bench.entries])
        costs, _ = benchmark_costs(bench, COSTS)
        run = run_benchmark(bench, names, workers=1, cache=cache)
        full[space] = judge_runs(run.runs, truth, costs, bench.higher_is_better)
        if space in ISSUE:
            checks.append(check(bench, run, costs))
        fit = run_benchmark(bench, names, alpha=parse_alpha("fit:50"), workers=1, cache=cache)
        fitted = judge_runs(fit.runs, truth, costs, bench.higher_is_better)
        # the label-free rows on the same held-out splits
        for name in ("zerolm", "param_mix"):
            mine = run.runs[name]
            if mine.splits:  # a default fitted on this benchmark: judged held out in `full` only
                continue
            splits = [(idx, mine.scores) for idx, _ in fit.runs["zerolm"].splits]
            alone = {name: dataclasses.replace(mine, splits=splits, result={})}
            fitted[f"{name} (default)"] = judge_runs(alone, truth, costs, bench.higher_is_better)[name]
        held[space] = fitted
        print(f"done {space}", flush=True)

    print("\nCheck against the issue (decoder_params / param_mix sum / param_mix layer, log-FLOPs):\n")
    print("| benchmark | issue | ties by benchmark order | ties averaged (library) |\n|---|---|---|---|")
    print("\n".join(checks))
    for cost in COSTS:
        print(f"\nRegret, {cost} budgets, all architectures (label-free rows; on gpt2 and transxl, whose")
        print("default balance is fitted on the benchmark, every row on its 20 held-out halves):\n")
        print("| proxy | " + " | ".join(spaces) + " |\n|---|" + "---:|" * len(spaces))
        for name in names:
            print(f"| `{name}` | " + " | ".join(cells(full[s][name][cost])[0] for s in spaces) + " |")
        print(f"\nFrontier against {cost}: size/n, recovered/true, HV ratio:\n")
        print("| proxy | " + " | ".join(spaces) + " |\n|---|" + "---|" * len(spaces))
        for name in names:
            print(f"| `{name}` | " + " | ".join(front(full[s][name][cost]) for s in spaces) + " |")
    for cost in COSTS:
        print(f"\nHeld-out splits of fit:50 (20 splits, N-50 models each), {cost} budgets: regret ± sd\n")
        print("| proxy | " + " | ".join(spaces) + " |\n|---|" + "---:|" * len(spaces))
        for name in [*names, "zerolm (default)", "param_mix (default)"]:
            label = f"`{name}` fit:50" if name in ("zerolm", "param_mix") else f"`{name}`"
            print(f"| {label} | " + " | ".join(cells(held[s][name][cost])[0] if name in held[s] else "n/a"
                                               for s in spaces) + " |")  # fmt: skip
        print(f"\nHeld-out frontier against {cost} (means over the splits): size/n, recovered/true, HV\n")
        print("| proxy | " + " | ".join(spaces) + " |\n|---|" + "---|" * len(spaces))
        for name in ("decoder_params", "zerolm (default)", "zerolm", "param_mix"):
            label = f"`{name}` fit:50" if name in ("zerolm", "param_mix") else f"`{name}`"
            print(f"| {label} | " + " | ".join(front(held[s][name][cost]) if name in held[s] else "n/a"
                                               for s in spaces) + " |")  # fmt: skip
    print("\nDefault zerolm regret below decoder_params' (all architectures):")
    for cost in COSTS:
        for s in spaces:
            z, d = full[s]["zerolm"][cost].regret, full[s]["decoder_params"][cost].regret
            print(f"  {cost:6s} {s:20s} zerolm {z:.4f}  decoder_params {d:.4f}  below: {z < d}")


if __name__ == "__main__":
    main()
