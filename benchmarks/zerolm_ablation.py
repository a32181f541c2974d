"""Which capacity statistic and layer aggregation: the measurements behind zerolm's defaults.

    .venv/bin/python benchmarks/zerolm_ablation.py [--repeats 20] [--k 50]

For every benchmark, each model is built once and its attention/FFN singular values computed
once; every candidate statistic (nuclear norm, sum of log(1+s), squared Frobenius norm, and
the number of entries, i.e. a plain parameter-count mix) is then scored under both layer
aggregations with alpha fitted on K labelled architectures (evaluated on the rest, mean over
``--repeats`` splits) and with the label-free heuristic (all architectures); the last column
fits the embedding's weight beta too (the same statistic of the embedding's matrices).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from trainfree.bench import load_benchmark
from trainfree.bench.harness import evaluate_balanced
from trainfree.data import data_root
from trainfree.proxies.balance import AlphaStrategy
from trainfree.proxies.spectral import STATISTICS, singular_values, sum_by_layer, transformer_matrices
from trainfree.proxies.zerolm import log_capacities

SETS = [
    ("flexibert-published", "nas-bench-bert"),
    ("flexibert", "nas-bench-bert"),
    ("gpt2", "lts/random_GPT2_wt103"),
    ("transxl", "lts/random_TransXL_wt103"),
]
CANDIDATES = [*STATISTICS, "entries"]  # entries: m * n per matrix, i.e. param_mix


def components_per_statistic(
    space: str, folder: str
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, bool]:
    bench = load_benchmark(space, data_root() / folder)
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for entry in bench.entries:
        model = bench.space.build(entry.config, seed=0)
        mats = transformer_matrices(model)
        spectra = singular_values(mats, fresh_init=True)
        for name in CANDIDATES:
            if name == "entries":
                values = [mat.weight.numel() for mat in mats]
            else:
                values = [STATISTICS[name](s.double()) for s in spectra]
            rows[name].append(log_capacities(sum_by_layer(mats, values)))
    comps = {name: {k: np.array([r[k] for r in rs]) for k in rs[0]} for name, rs in rows.items()}
    truth = np.array([e.ground_truth for e in bench.entries])
    return comps, truth, bench.higher_is_better


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()
    print(
        "| benchmark | statistic | aggregation | fit:K rho | fit:K tau | heuristic rho | heuristic tau "
        "| fit:K rho, + beta E |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for space, folder in SETS:
        comps, truth, hib = components_per_statistic(space, folder)
        for name, c in comps.items():
            for agg in ("sum", "layer"):
                # restrict both strategies to this one aggregation by offering it under both names
                a, f = c[f"attention_{agg}"], c[f"ffn_{agg}"]
                restricted = {"attention_sum": a, "ffn_sum": f, "attention_layer": a, "ffn_layer": f}
                _, fit = evaluate_balanced(
                    restricted, truth, hib, AlphaStrategy("fit", k=args.k), args.repeats
                )
                _, heur = evaluate_balanced(restricted, truth, hib, AlphaStrategy("heuristic"), args.repeats)
                _, emb = evaluate_balanced(
                    {**restricted, "embedding": c["embedding"]},
                    truth,
                    hib,
                    AlphaStrategy("fit", k=args.k),
                    args.repeats,
                )
                print(
                    f"| {space} | {name} | {agg} | {fit['spearman']:.3f} ± {fit['spearman_std']:.3f} | "
                    f"{fit['kendall']:.3f} ± {fit['kendall_std']:.3f} | "
                    f"{heur['spearman']:.3f} | {heur['kendall']:.3f} | "
                    f"{emb['spearman']:.3f} ± {emb['spearman_std']:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
