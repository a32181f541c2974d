"""Agreement of our baseline proxies with the values their authors published.

    nice -n 10 .venv/bin/python benchmarks/verify_baselines.py --set nas-bench-bert --n 100
    nice -n 10 .venv/bin/python benchmarks/verify_baselines.py --set lts-gpt2 --n 50 --csv out.csv

For each proxy with a published reference, on a seeded random subset of ``--n`` architectures:
the Spearman correlation between our value and the reference value of the same architecture,
and both values' Spearman correlation with the benchmark's ground truth (sign-adjusted, so a
good predictor is positive), plus our median seconds per architecture.

References (never copied into the repository; read from ``--data``, default ``$TRAINFREE_DATA``):

* ``nas-bench-bert``: ``nas-bench-bert/BERT_results_activation.csv`` (Serianni & Kalita's
  notebook), compared on ``flexibert-published`` (the models those values were computed on);
  ground truth: GLUE average.
* ``lts-gpt2``: ``lts/random_GPT2_wt103/*_scores_seed_1111.yaml`` (LPZero's runner on the LTS
  GPT-2 models); ground truth: validation perplexity (lower is better).

``--scores REPORT/scores.csv`` takes our values from a ``trainfree bench --proxy all --report``
run of the same space instead of recomputing them (same seed and default batch, so the same
values); ``--n`` then selects from the architectures that report covers.

``--objective sum`` runs the gradient proxies on the NAS-Bench-BERT notebook's signal (backward
of the summed last hidden state) instead of the library default (masked / causal LM loss).
Prints a table and writes one CSV row per (set, proxy).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import spearmanr

from trainfree import get_proxy
from trainfree.bench import Benchmark, load_benchmark
from trainfree.data import data_root
from trainfree.proxies import ProxyContext

#: ours -> reference column of BERT_results_activation.csv
NAS_BERT = {
    "synaptic_diversity": "Synaptic Diversity",
    "synaptic_saliency": "Synaptic Saliency",
    "activation_distance": "Activation Distance",
    "jacobian_score": "Jacobian Score",
    "head_importance": "Head Importance",
    "head_confidence": "Head Confidence",
    "softmax_confidence": "Head Softmax Confidence",
    "params": "Number of Parameters",
}
#: ours -> reference file stem in random_GPT2_wt103 (<stem>_scores_seed_1111.yaml)
LTS_GPT2 = {
    "synflow": "synflow",
    "logsynflow": "logsynflow",
    "snip": "snip",
    "grasp": "grasp",
    "fisher": "fisher",
    "grad_norm": "grad_norm",
    "jacob_cov": "jacobian_cosine",  # a different statistic of the input Jacobian, see docs
    "activation_distance": "activation_distance",
    "synaptic_diversity": "synaptic_diversity",
    "synaptic_saliency": "synaptic_saliency",
    "head_importance": "head_importance",
    "head_confidence": "head_confidence",
    "attention_confidence": "attention_confidence",
    "params": "num_parameters",
}


def nas_bert_reference(root: Path) -> tuple[str, dict[str, str], dict[str, dict[str, float]]]:
    table = pd.read_csv(root / "nas-bench-bert" / "BERT_results_activation.csv")
    ids = table["ID"].astype(str)
    refs = {ours: dict(zip(ids, table[col], strict=True)) for ours, col in NAS_BERT.items()}
    return "flexibert-published", NAS_BERT, refs


def lts_gpt2_reference(root: Path) -> tuple[str, dict[str, str], dict[str, dict[str, float]]]:
    folder = root / "lts" / "random_GPT2_wt103"
    refs = {}
    for ours, stem in LTS_GPT2.items():
        data = yaml.safe_load((folder / f"{stem}_scores_seed_1111.yaml").read_text())
        refs[ours] = {str(k): float(v) for k, v in data.items()}
    return "gpt2", LTS_GPT2, refs


SETS = {"nas-bench-bert": nas_bert_reference, "lts-gpt2": lts_gpt2_reference}


def run_set(
    name: str, root: Path, n: int, seed: int, objective: str, scores: Path | None = None
) -> list[dict]:
    space_name, mapping, refs = SETS[name](root)
    bench = load_benchmark(space_name)
    if scores is not None:
        return from_report(name, space_name, mapping, refs, bench, scores, n, seed)
    rng = np.random.default_rng(seed)
    entries = [bench.entries[i] for i in rng.permutation(len(bench.entries))[:n]]
    sign = 1.0 if bench.higher_is_better else -1.0
    ours: dict[str, list[float]] = {p: [] for p in mapping}
    seconds: dict[str, list[float]] = {p: [] for p in mapping}
    t_start = time.perf_counter()
    for k, entry in enumerate(entries, 1):
        ctx = ProxyContext(seed=0, options={"objective": objective} if objective != "lm" else {})
        ctx.model(bench.space, entry.config)  # built once, shared, not timed per proxy
        for proxy in mapping:
            t0 = time.perf_counter()
            ours[proxy].append(get_proxy(proxy)(bench.space, entry.config, ctx))
            seconds[proxy].append(time.perf_counter() - t0)
        print(f"\r{name}: {k}/{len(entries)} architectures", end="", flush=True)
    wall = time.perf_counter() - t_start
    print(f"  ({wall:.0f} s)")
    truth = np.array([entry.ground_truth for entry in entries]) * sign
    return [
        agreement_row(
            name, space_name, objective, proxy, ref_name,
            mine=np.array(ours[proxy]),
            ref=np.array([refs[proxy][str(entry.id)] for entry in entries]),
            truth=truth,
            median_s=float(np.median(seconds[proxy])),
            wall_s=round(wall, 1),
        )
        for proxy, ref_name in mapping.items()
    ]  # fmt: skip


def agreement_row(
    name: str,
    space_name: str,
    objective: str,
    proxy: str,
    ref_name: str,
    mine: np.ndarray,
    ref: np.ndarray,
    truth: np.ndarray,
    median_s: float,
    wall_s: float,
) -> dict:
    """One CSV row: our values against the reference's, and each against the ground truth."""
    return {
        "set": name,
        "space": space_name,
        "objective": objective,
        "proxy": proxy,
        "reference": ref_name,
        "n": len(mine),
        "spearman_vs_reference": float(spearmanr(mine, ref).statistic),
        "ours_vs_truth": float(spearmanr(mine, truth).statistic),
        "reference_vs_truth": float(spearmanr(ref, truth).statistic),
        "median_s_per_arch": median_s,
        "wall_s": wall_s,
    }


def from_report(
    name: str,
    space_name: str,
    mapping: dict[str, str],
    refs: dict[str, dict[str, float]],
    bench: Benchmark,
    scores: Path,
    n: int,
    seed: int,
) -> list[dict]:
    """Agreement rows from a ``trainfree bench --report`` scores.csv (nothing recomputed)."""
    table = pd.read_csv(scores, dtype={"id": str}).set_index("id")
    missing = [p for p in mapping if p not in table.columns]
    if missing:
        raise SystemExit(f"{scores}: no column for {', '.join(missing)} (run bench with --proxy all)")
    truth_of = {str(entry.id): entry.ground_truth for entry in bench.entries}
    ids = [i for i in table.index if i in truth_of]
    if not ids:
        raise SystemExit(f"{scores}: no architecture id of {space_name!r} in its 'id' column")
    ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:n]]
    sign = 1.0 if bench.higher_is_better else -1.0
    rows = []
    for proxy, ref_name in mapping.items():
        column = table.loc[ids, proxy]
        keep = [i for i, v in zip(ids, column, strict=True) if np.isfinite(v)]
        mine = table.loc[keep, proxy].to_numpy(float)
        ref = np.array([refs[proxy][i] for i in keep])
        truth = np.array([truth_of[i] for i in keep]) * sign
        # timings: see the report's ms/arch column
        rows.append(
            agreement_row(name, space_name, "lm", proxy, ref_name, mine, ref, truth, math.nan, math.nan)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=[*SETS, "all"], default="all")
    parser.add_argument("--n", type=int, default=50, help="architectures per set (seeded subset)")
    parser.add_argument("--data", type=Path, default=None, help="benchmark folder (default: $TRAINFREE_DATA)")
    parser.add_argument("--objective", choices=["lm", "sum"], default="lm")
    parser.add_argument("--seed", type=int, default=0, help="subset seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", type=Path, default=Path("verify_baselines.csv"))
    parser.add_argument(
        "--scores", type=Path, default=None, help="scores.csv of a bench --proxy all --report run"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.data or data_root()
    rows = []
    for name in SETS if args.set == "all" else [args.set]:
        rows += run_set(name, root, args.n, args.seed, args.objective, args.scores)
    head = ("set", "proxy", "reference", "n", "rho_ref", "ours~gt", "ref~gt", "s/arch")
    print("\n{:15s} {:21s} {:24s} {:>4s} {:>8s} {:>8s} {:>8s} {:>7s}".format(*head))
    for r in rows:
        print(
            f"{r['set']:15s} {r['proxy']:21s} {r['reference']:24s} {r['n']:4d}"
            f" {r['spearman_vs_reference']:8.3f} {r['ours_vs_truth']:8.3f}"
            f" {r['reference_vs_truth']:8.3f} {r['median_s_per_arch']:7.2f}"
        )
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
