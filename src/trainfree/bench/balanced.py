"""Evaluating a balanced proxy (``zerolm``, ``param_mix``) over a benchmark under an alpha
strategy: the label-free ones on every architecture, ``fit:K`` on held-out splits only.

A balance transferred from a published benchmark (``--alpha heuristic`` on ``gpt2`` and
``transxl``) is label-free anywhere but on that benchmark itself, where judging it on every
architecture would grade it on the labels it was fitted on. There it is judged as it was made:
refitted on half of the architectures and judged on the other half, over the same splits as
``fit:K``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.bench.correlation import rank_correlation
from trainfree.proxies.balance import AlphaStrategy, Balance, choose, combine, fitted_on


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
        return _judge_everywhere(components, chosen, truth, higher_is_better, seed, strategy)
    k = int(strategy.k or 50)
    if k >= n - 2:
        raise ValueError(f"--alpha fit:{k} leaves {n - k} architectures to evaluate on; use K < {n - 2}")
    fits = _fit_on_splits(components, truth, higher_is_better, strategy, k, repeats, seed, space, splits)
    result = fits.summary(n - k)
    result.update(
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
    assert fits.first_scores is not None
    return fits.first_scores, result


def _judge_everywhere(
    components: dict[str, np.ndarray],
    chosen: Balance,
    truth: np.ndarray,
    higher_is_better: bool,
    seed: int,
    strategy: AlphaStrategy,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A label-free balance: it saw no labels, so it is judged on every architecture."""
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


@dataclass
class _SplitFits:
    """Per random split: the held-out correlations and the balance fitted on the rest."""

    per_split: dict[str, list[float]] = field(
        default_factory=lambda: {"spearman": [], "kendall": [], "pearson": [], "top10_precision": []}
    )
    alphas: list[float] = field(default_factory=list)
    betas: list[float] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)
    first_scores: np.ndarray | None = None  # the first split's balance, for inspection only

    def summary(self, n_eval: int) -> dict[str, Any]:
        """Mean and std over the splits of each correlation and of the fitted balance."""
        result: dict[str, Any] = {"n": n_eval}
        for key, values in self.per_split.items():
            v = np.array(values)
            result[key] = float(np.nanmean(v))
            result[f"{key}_std"] = float(np.nanstd(v))
        for key in ("spearman", "kendall"):
            lo, hi = np.nanpercentile(self.per_split[key], [2.5, 97.5])
            result[f"{key}_ci"] = [float(lo), float(hi)]
        result.update(
            alpha=float(np.mean(self.alphas)),
            alpha_std=float(np.std(self.alphas)),
            alphas=[round(a, 4) for a in self.alphas],
            beta=float(np.mean(self.betas)),
            beta_std=float(np.std(self.betas)),
            betas=[round(b, 4) for b in self.betas],
            aggregates=self.aggregates,
            aggregate=max(set(self.aggregates), key=self.aggregates.count),
        )
        return result


def _fit_on_splits(
    components: dict[str, np.ndarray],
    truth: np.ndarray,
    higher_is_better: bool,
    strategy: AlphaStrategy,
    k: int,
    repeats: int,
    seed: int,
    space: Any,
    splits: list[tuple[np.ndarray, np.ndarray]] | None,
) -> _SplitFits:
    """``repeats`` random splits: the balance fitted on ``k`` labelled architectures, judged on
    the others only (each split's ``(held-out indices, scores)`` appended to ``splits``)."""
    n = len(truth)
    rng = np.random.default_rng(seed)
    fits = _SplitFits()
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
        for key in fits.per_split:
            fits.per_split[key].append(getattr(r, key))
        fits.alphas.append(chosen.alpha)
        fits.betas.append(chosen.beta)
        fits.aggregates.append(chosen.aggregate)
        if fits.first_scores is None:
            fits.first_scores = scores
    return fits
