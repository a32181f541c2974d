"""Score every architecture of a benchmark with a set of proxies and rank-correlate.

One model is built per architecture and shared by every proxy that needs it; the build time
is charged to each of those proxies, so ``seconds_per_arch`` is what a user running that proxy
alone would wait.

Balanced proxies (``zerolm``, ``param_mix``) are scored through their sub-module components
and an :class:`~trainfree.proxies.balance.AlphaStrategy`. With ``fit:K`` the balance is fitted
on K random labelled architectures and evaluated on the *other* N - K only, over ``repeats``
random splits; the figures are the mean and standard deviation over the splits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.benchmarks.evaluate import rank_correlation
from trainfree.benchmarks.loaders import Benchmark
from trainfree.proxies import ProxyContext, get_proxy
from trainfree.proxies.balance import AlphaStrategy, Balance, combine, fit_balance, heuristic_balance


@dataclass
class ProxyRun:
    """Raw scores of one proxy over a benchmark, with timing and its evaluation.

    ``result`` holds at least ``n``, ``spearman``, ``kendall``, their ``_ci`` intervals and
    ``top10_precision``; a balanced proxy adds how its balance was chosen.
    """

    name: str
    scores: np.ndarray
    seconds: np.ndarray
    result: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def seconds_per_arch(self) -> float:
        return float(np.mean(self.seconds))

    def as_dict(self) -> dict[str, Any]:
        proxy = get_proxy(self.name)
        out = dict(self.result)
        out.update(
            seconds_per_arch=self.seconds_per_arch,
            needs_data=proxy.needs_data,
            needs_grad=proxy.needs_grad,
            n_errors=len(self.errors),
        )
        return out


def score_benchmark(
    bench: Benchmark,
    proxy_names: Sequence[str],
    seed: int = 0,
    seq_len: int | None = None,
    alpha: AlphaStrategy | None = None,
    repeats: int = 20,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, ProxyRun]:
    """Compute every proxy on every architecture, then evaluate each proxy."""
    proxies = [get_proxy(n) for n in proxy_names]
    n = len(bench.entries)
    raw: dict[str, list[Any]] = {p.name: [math.nan] * n for p in proxies}
    seconds = {p.name: np.zeros(n) for p in proxies}
    errors: dict[str, dict[str, str]] = {p.name: {} for p in proxies}
    for i, entry in enumerate(bench.entries):
        ctx = ProxyContext(seed=seed, seq_len=seq_len)
        build_s = 0.0
        if any(p.needs_model for p in proxies):
            t0 = time.perf_counter()
            ctx.model(bench.space, entry.config)
            build_s = time.perf_counter() - t0
        for p in proxies:
            t0 = time.perf_counter()
            try:
                fn = p.components if p.balanced else p
                raw[p.name][i] = fn(bench.space, entry.config, ctx)
            except Exception as exc:  # a proxy failing on one architecture must not end the run
                errors[p.name][entry.id] = f"{type(exc).__name__}: {exc}"
            seconds[p.name][i] = time.perf_counter() - t0 + (build_s if p.needs_model else 0.0)
        if on_step:
            on_step(i + 1)
    truth = np.array([e.ground_truth for e in bench.entries])
    runs = {}
    for p in proxies:
        if p.balanced:
            comps = _stack_components(raw[p.name])
            scores, result = evaluate_balanced(
                comps, truth, bench.higher_is_better, alpha or AlphaStrategy("heuristic"), repeats, seed
            )
            runs[p.name] = ProxyRun(p.name, scores, seconds[p.name], result, errors[p.name])
        else:
            scores = np.array(raw[p.name], dtype=np.float64)
            result = rank_correlation(scores, truth, bench.higher_is_better, seed=seed).as_dict()
            runs[p.name] = ProxyRun(p.name, scores, seconds[p.name], result, errors[p.name])
    return runs


def _stack_components(rows: list[Any]) -> dict[str, np.ndarray]:
    keys = next((list(r) for r in rows if isinstance(r, dict)), [])
    return {k: np.array([r[k] if isinstance(r, dict) else math.nan for r in rows]) for k in keys}


def evaluate_balanced(
    components: dict[str, np.ndarray],
    truth: np.ndarray,
    higher_is_better: bool,
    strategy: AlphaStrategy,
    repeats: int = 20,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores and rank correlations of a balanced proxy under an alpha strategy.

    ``fixed`` and ``heuristic`` use no labels, so they are evaluated on every architecture
    (the aggregation of a fixed alpha is the heuristic's label-free choice). ``fit:K`` is
    fitted on K architectures and evaluated on the rest, ``repeats`` times; the returned
    scores are those of the first split's balance, for inspection only.
    """
    n = len(truth)
    if strategy.kind in ("fixed", "heuristic"):
        chosen = heuristic_balance(components)
        if strategy.kind == "fixed":
            chosen = Balance(float(strategy.alpha), chosen.aggregate)
        scores = combine(components, chosen)
        result = rank_correlation(scores, truth, higher_is_better, seed=seed).as_dict()
        result.update(alpha=chosen.alpha, aggregate=chosen.aggregate, alpha_strategy=str(strategy))
        return scores, result
    k = int(strategy.k or 50)
    if k >= n - 2:
        raise ValueError(f"--alpha fit:{k} leaves {n - k} architectures to evaluate on; use K < {n - 2}")
    rng = np.random.default_rng(seed)
    per_split: dict[str, list[float]] = {"spearman": [], "kendall": [], "pearson": [], "top10_precision": []}
    alphas, aggregates, first_scores = [], [], None
    for _ in range(repeats):
        order = rng.permutation(n)
        fit_idx, eval_idx = order[:k], order[k:]
        chosen = fit_balance({c: v[fit_idx] for c, v in components.items()}, truth[fit_idx], higher_is_better)
        scores = combine(components, chosen)
        r = rank_correlation(scores[eval_idx], truth[eval_idx], higher_is_better, n_boot=0)
        for key in per_split:
            per_split[key].append(getattr(r, key))
        alphas.append(chosen.alpha)
        aggregates.append(chosen.aggregate)
        if first_scores is None:
            first_scores = scores
    result: dict[str, Any] = {"n": n - k}
    for key, values in per_split.items():
        v = np.array(values)
        result[key] = float(np.nanmean(v))
        result[f"{key}_std"] = float(np.nanstd(v))
    for key in ("spearman", "kendall"):
        lo, hi = np.nanpercentile(per_split[key], [2.5, 97.5])
        result[f"{key}_ci"] = [float(lo), float(hi)]
    result.update(
        alpha=float(np.mean(alphas)),
        alpha_std=float(np.std(alphas)),
        alphas=[round(a, 4) for a in alphas],
        aggregates=aggregates,
        aggregate=max(set(aggregates), key=aggregates.count),
        alpha_strategy=str(strategy),
        protocol={
            "fit_on": k,
            "evaluate_on": n - k,
            "repeats": repeats,
            "seed": seed,
            "description": f"alpha and aggregation fitted (max Kendall tau) on {k} random labelled "
            f"architectures, correlations computed on the other {n - k} only; mean/std over {repeats} splits",
        },
    )
    assert first_scores is not None
    return first_scores, result
