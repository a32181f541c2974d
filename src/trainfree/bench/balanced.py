"""Evaluating a balanced proxy (``zerolm``, ``param_mix``) over a benchmark under an alpha
strategy: the label-free ones on every architecture, ``fit:K`` on held-out splits only.

A balance transferred from a published benchmark (``--alpha heuristic`` on ``gpt2`` and
``transxl``) is label-free anywhere but on that benchmark itself, where judging it on every
architecture would grade it on the labels it was fitted on. There it is judged as it was made:
refitted on half of the architectures and judged on the other half, over the same splits as
``fit:K``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trainfree.bench.correlation import rank_correlation
from trainfree.proxies.balance import AlphaStrategy, choose, combine, fitted_on


def evaluate_balanced(
    components: dict[str, np.ndarray],
    truth: np.ndarray,
    higher_is_better: bool,
    strategy: AlphaStrategy,
    repeats: int = 20,
    seed: int = 0,
    space: Any = None,
    ids: Sequence[str] | None = None,
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None,
    proxy: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores and rank correlations of a balanced proxy under an alpha strategy, chosen by
    :func:`~trainfree.proxies.balance.choose`.

    The label-free strategies (``heuristic``, ``fixed``, ``agreement``) use no labels, so they
    are evaluated on every architecture. ``fit:K`` is fitted on K architectures and evaluated
    on the rest, ``repeats`` times; the returned scores are those of the first split's
    balance, for inspection only. ``splits``, when given, receives each split's
    ``(held-out indices, scores)``, so that other judges (selection regret) can keep to the
    held-out architectures too. ``proxy``: the balanced proxy's name (its prior).
    """
    n = len(truth)
    shown, why = strategy, ""
    if strategy.kind != "fit":
        chosen = choose(strategy, components, space=space, ids=ids, proxy=proxy)
        if ids is not None and fitted_on(chosen, ids, truth):  # as it was made, held out (see above)
            if n < 5:
                raise ValueError(
                    f"the default balance of {proxy} was fitted on these architectures; {n} are too "
                    "few to judge it held out (5 or more), so pass --alpha with a number"
                )
            strategy, why = AlphaStrategy("fit", k=n // 2), chosen.reason
    if strategy.kind != "fit":
        scores = combine(components, chosen)
        result = rank_correlation(scores, truth, higher_is_better, seed=seed).as_dict()
        result.update(
            alpha=chosen.alpha,
            aggregate=chosen.aggregate,
            beta=chosen.beta,
            alpha_strategy=str(strategy),
            balance_reason=chosen.reason,
        )
        return scores, result
    k = int(strategy.k or 50)
    if k >= n - 2:
        raise ValueError(f"--alpha fit:{k} leaves {n - k} architectures to evaluate on; use K < {n - 2}")
    rng = np.random.default_rng(seed)
    per_split: dict[str, list[float]] = {"spearman": [], "kendall": [], "pearson": [], "top10_precision": []}
    alphas, betas, aggregates, first_scores = [], [], [], None
    for _ in range(repeats):
        order = rng.permutation(n)
        fit_idx, eval_idx = order[:k], order[k:]
        chosen = choose(
            strategy,
            {c: v[fit_idx] for c, v in components.items()},
            truth[fit_idx],
            space=space,
            higher_is_better=higher_is_better,
        )
        scores = combine(components, chosen)
        if splits is not None:
            splits.append((eval_idx, scores))
        r = rank_correlation(scores[eval_idx], truth[eval_idx], higher_is_better, n_boot=0)
        for key in per_split:
            per_split[key].append(getattr(r, key))
        alphas.append(chosen.alpha)
        betas.append(chosen.beta)
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
        beta=float(np.mean(betas)),
        beta_std=float(np.std(betas)),
        betas=[round(b, 4) for b in betas],
        aggregates=aggregates,
        aggregate=max(set(aggregates), key=aggregates.count),
        alpha_strategy=str(shown),
        protocol={
            "fit_on": k,
            "evaluate_on": n - k,
            "repeats": repeats,
            "seed": seed,
            "description": f"alpha, beta and aggregation fitted (max Kendall tau) on {k} random labelled "
            f"architectures, correlations computed on the other {n - k} only; mean/std over {repeats} splits",
        },
    )
    if shown is not strategy:
        result["balance_reason"] = f"{why}; judged on its own source benchmark, so refitted as made"
        result["protocol"]["description"] = (
            f"the label-free default is a balance fitted on this benchmark: judged as it was made, "
            f"refitted on {k} random architectures and judged on the other {n - k}; mean/std over "
            f"{repeats} splits"
        )
    assert first_scores is not None
    return first_scores, result
