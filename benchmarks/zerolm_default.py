"""The label-free default of zerolm (``--alpha heuristic``) against the issue-12 targets.

For each shipped benchmark: Spearman of the default (``gpt2``, ``transxl``: the balance
fitted on the space's published benchmark, judged as made, held out: refitted on half, judged
on the other half, beside ``decoder_params`` on the same halves; FlexiBERT: the aggregation
prior, alpha 0.5, on every architecture), of ``params`` and ``decoder_params``, and of the
former population rule (``agreement``); the target (>= decoder_params - 0.005 on the LTS sets,
>= params + 0.10 on FlexiBERT); and stability: over 200 bootstrap resamples of the benchmark
and over 50 random samples of 12, 50 and 200 architectures of the space, the share of draws in
which each rule makes its modal choice (aggregation, and alpha within 0.05 of the modal
alpha). For a transferred balance, the last column gives the same share for refitting it on
each bootstrap resample: how firmly the published benchmark decides it.

    python benchmarks/zerolm_default.py
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from trainfree.bench.balanced import evaluate_balanced
from trainfree.bench.loaders import load_benchmark
from trainfree.proxies import ProxyContext, get_proxy
from trainfree.proxies.balance import AlphaStrategy, choose, combine, fit_balance

SPACES = ("gpt2", "transxl", "flexibert", "flexibert-published")


def comps_of(space, configs) -> dict[str, np.ndarray]:
    proxy = get_proxy("zerolm")
    rows = [proxy.components(space, c, ProxyContext()) for c in configs]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def stability(choices: list) -> float:
    """Share of choices equal to the modal aggregation with alpha within 0.05 of its median."""
    aggs = [c.aggregate for c in choices]
    mode = max(set(aggs), key=aggs.count)
    alpha = np.median([c.alpha for c in choices if c.aggregate == mode])
    return float(np.mean([c.aggregate == mode and abs(c.alpha - alpha) <= 0.05 for c in choices]))


def main() -> None:
    warnings.simplefilter("ignore")
    rows = []
    for name in SPACES:
        bench = load_benchmark(name)
        space = bench.space
        truth = np.array([e.ground_truth for e in bench.entries]) * (1 if bench.higher_is_better else -1)
        comps = comps_of(space, [e.config for e in bench.entries])
        counts = [space.param_counts(e.config) for e in bench.entries]
        params = np.array([c.total for c in counts], float)
        decoder = np.array([c.decoder for c in counts], float)

        def rho(x, idx=slice(None), truth=truth):
            return float(stats.spearmanr(x[idx], truth[idx]).statistic)

        default = choose("heuristic", space=space, proxy="zerolm")
        agreement = choose("agreement", comps)
        splits: list = []
        ids = [e.id for e in bench.entries]
        raw = np.array([e.ground_truth for e in bench.entries])
        _, judged = evaluate_balanced(comps, raw, bench.higher_is_better, AlphaStrategy("heuristic"),
                                      space=space, ids=ids, proxy="zerolm", splits=splits)  # fmt: skip
        held = [idx for idx, _ in splits] or [np.arange(len(truth))]
        z = judged["spearman"]
        d_rho = float(np.mean([rho(decoder, i) for i in held]))
        target = d_rho - 0.005 if name in ("gpt2", "transxl") else rho(params) + 0.10
        rng = np.random.default_rng(0)
        boot = [rng.integers(0, len(truth), len(truth)) for _ in range(200)]
        boot_default = [choose("heuristic", {k: v[i] for k, v in comps.items()}, space=space) for i in boot]
        boot_agree = [choose("agreement", {k: v[i] for k, v in comps.items()}) for i in boot]
        # how firmly the benchmark decides the transferred balance: refitted on each resample
        refits = [fit_balance({k: v[i] for k, v in comps.items()}, truth[i]) for i in boot] if splits else []
        if splits:  # held out: each split's default against decoder_params on the same half
            wins = np.mean([rho(sc, i) >= rho(decoder, i) - 0.005 for i, sc in splits])
        else:
            wins = np.mean(
                [rho(combine(comps, default), i) >= target - rho(decoder) + rho(decoder, i) for i in boot]
            )
        sample = {}
        rng_space = np.random.default_rng(1)
        pool = [space.sample(rng_space) for _ in range(1000)]
        pool_comps = comps_of(space, pool)
        for n in (12, 50, 200):
            picks = [np.random.default_rng(s).choice(1000, n, replace=False) for s in range(50)]
            d = [choose("heuristic", {k: v[i] for k, v in pool_comps.items()}, space=space) for i in picks]
            a = [choose("agreement", {k: v[i] for k, v in pool_comps.items()}) for i in picks]
            sample[n] = (stability(d), stability(a), np.mean([c.aggregate == "layer" for c in a]))
        rows.append((name, rho(params), d_rho, z, default, target, rho(combine(comps, agreement)),
                     agreement, stability(boot_default), stability(boot_agree), wins, sample,
                     stability(refits) if refits else None, bool(splits)))  # fmt: skip
    print(
        "| benchmark | params | decoder_params | default (choice) | target | met | agreement rule (choice) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, p, d, z, dflt, t, za, agr, *rest in rows:
        held_out = " held out" if rest[-1] else ""
        print(
            f"| {name} | {p:.3f} | {d:.3f} | {z:.3f}{held_out} ({dflt.aggregate}, a={dflt.alpha:.2f}, "
            f"b={dflt.beta:.2f}) | {t:.3f} | {'yes' if z >= t else 'NO'} "
            f"| {za:.3f} ({agr.aggregate}, a={agr.alpha:.2f}) |"
        )
    print("(held out: refitted on half, judged on the other half, 20 splits; decoder_params on the same")
    print("halves; there, 'meets target on bootstrap' is the share of those splits that meet it)")
    print()
    print(
        "Stability: share of draws with the modal choice (aggregation, alpha within 0.05), "
        "default / agreement"
    )
    print("| benchmark | bootstrap (200) | space n=12 | n=50 | n=200 | agreement picks layer n=12/50/200 | "
          "default meets target on bootstrap | transferred balance refitted on bootstrap |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, *_, bd, ba, wins, sample, refit, _ in rows:
        cells = " | ".join(f"{sample[n][0]:.2f} / {sample[n][1]:.2f}" for n in (12, 50, 200))
        layer = "/".join(f"{sample[n][2]:.2f}" for n in (12, 50, 200))
        refitted = "-" if refit is None else f"{refit:.2f}"
        print(f"| {name} | {bd:.2f} / {ba:.2f} | {cells} | {layer} | {wins:.2f} | {refitted} |")


if __name__ == "__main__":
    main()
