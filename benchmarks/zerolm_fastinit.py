"""zerolm's fresh-initialisation fast path against build + spectra, on every shipped benchmark.

For every architecture of each benchmark: the components from the fast path (init laws +
Marchenko-Pastur references, no model built; ``proxies.fastinit``) and from the built path
(``space.build`` + spectra of the real weights, ``ctx.options["build"] = True``). Prints the
milliseconds per architecture of each (one thread, reference spectra already cached for
both: they are computed once per shape per process, and both paths share them; the cold
first pass of the fast path is printed too) and the rank agreement (Spearman) between the two
on each component and on the zerolm score under four balances, beside the agreement of the
built path with itself across two seeds (the noise floor: a component that is equal in law
for many architectures is ranked among them by seed noise only).

    python benchmarks/zerolm_fastinit.py [--limit N] [--space S ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import stats

from trainfree.bench.loaders import load_benchmark
from trainfree.proxies import ProxyContext, get_proxy
from trainfree.proxies.balance import Balance, combine, heuristic_balance

SPACES = ("gpt2", "transxl", "flexibert", "flexibert-published")


def components(space, configs, build: bool, seed: int = 0) -> tuple[dict[str, np.ndarray], float]:
    proxy = get_proxy("zerolm")
    rows, t0 = [], time.perf_counter()
    options = {"build": True} if build else {}
    for cfg in configs:
        rows.append(proxy.components(space, cfg, ProxyContext(seed=seed, options=options)))
    seconds = (time.perf_counter() - t0) / len(configs)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}, seconds


def rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", action="append", choices=SPACES)
    parser.add_argument("--limit", type=int, default=None, help="first N architectures only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| space | n | fast ms (cold) | fast ms | build + spectra ms | speed-up "
        "| min score Spearman fast vs built | same, built seed 1 vs seed 0 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    worst_detail = []
    for name in args.space or SPACES:
        bench = load_benchmark(name)
        configs = [e.config for e in bench.entries[: args.limit]]
        _, cold = components(bench.space, configs, build=False)
        fast, warm = components(bench.space, configs, build=False)
        built, slow = components(bench.space, configs, build=True)
        other_seed, _ = components(bench.space, configs, build=True, seed=1)
        keys = [k for k in fast if np.ptp(built[k]) > 0]
        rhos = {k: rho(fast[k], built[k]) for k in keys}
        noise = {k: rho(other_seed[k], built[k]) for k in keys}
        balances = [Balance(0.5, "sum"), Balance(0.5, "layer"), heuristic_balance(built)]
        balances.append(Balance(0.5, "sum", 0.5))
        for b in balances:
            key = f"a={b.alpha:.2f},{b.aggregate},b={b.beta:g}"
            rhos[key] = rho(combine(fast, b), combine(built, b))
            noise[key] = rho(combine(other_seed, b), combine(built, b))
        scores = [k for k in rhos if k.startswith("a=")]
        low = min(scores, key=rhos.get)
        worst_detail.append(
            f"{name}: " + ", ".join(f"{k} {rhos[k]:.5f} (seeds {noise[k]:.5f})" for k in rhos)
        )
        print(
            f"| {name} | {len(configs)} | {1e3 * cold:.2f} | {1e3 * warm:.3f} | {1e3 * slow:.1f} | "
            f"{slow / warm:.0f}x | {rhos[low]:.5f} | {noise[low]:.5f} |"
        )
    print()
    for line in worst_detail:
        print(line)


if __name__ == "__main__":
    main()
