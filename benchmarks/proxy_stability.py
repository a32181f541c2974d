"""How much of a data-dependent proxy's ranking is the input batch, not the architecture?

    .venv/bin/python benchmarks/proxy_stability.py --space flexibert-published --n 100 \
        --proxy synaptic_saliency --proxy activation_distance --proxy jacobian_score

Scores ``--n`` seeded-random benchmark architectures twice with the same weights (seed 0) but
two different random token batches (``data_seed`` 0 and 1), and prints the Spearman
correlation between the two rankings. A proxy whose ranking moves with the batch cannot agree
with a reference computed on yet another batch (other text, another tokenizer) better than it
agrees with itself, so this bounds the agreement ``verify_baselines.py`` can show. Also prints
each run's Spearman with the ground truth.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import spearmanr

from trainfree import get_proxy
from trainfree.bench import load_benchmark
from trainfree.proxies import ProxyContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="flexibert-published")
    parser.add_argument("--proxy", action="append", required=True)
    parser.add_argument("--n", type=int, default=100, help="architectures (seeded subset)")
    parser.add_argument("--seed", type=int, default=0, help="subset seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = load_benchmark(args.space)
    order = np.random.default_rng(args.seed).permutation(len(bench.entries))[: args.n]
    entries = [bench.entries[i] for i in order]
    values = {(p, s): [] for p in args.proxy for s in (0, 1)}
    for k, entry in enumerate(entries, 1):
        for data_seed in (0, 1):
            ctx = ProxyContext(seed=0, options={"data_seed": data_seed})
            ctx.model(bench.space, entry.config)  # same weights for both batches
            for p in args.proxy:
                values[p, data_seed].append(get_proxy(p)(bench.space, entry.config, ctx))
        print(f"\r{k}/{len(entries)} architectures", end="", flush=True)
    print()
    sign = 1.0 if bench.higher_is_better else -1.0
    truth = sign * np.array([e.ground_truth for e in entries])
    print(f"{'proxy':22s} {'batch0~batch1':>14s} {'batch0~gt':>10s} {'batch1~gt':>10s}")
    for p in args.proxy:
        a, b = np.array(values[p, 0]), np.array(values[p, 1])
        print(
            f"{p:22s} {spearmanr(a, b).statistic:14.3f} {spearmanr(a, truth).statistic:10.3f}"
            f" {spearmanr(b, truth).statistic:10.3f}"
        )


if __name__ == "__main__":
    main()
