"""Balancing sub-module capacities: ``score = alpha * A + (1 - alpha) * F + beta * E``.

A *balanced* proxy (``zerolm``, ``param_mix``) reports, per architecture, the log-capacity of
its attention (``A``) and feed-forward (``F``) sub-modules under two aggregations over layers:

- ``sum``:   ``A = log(1 + sum_l c_l)``   - capacities add up across layers;
- ``layer``: ``A = sum_l log(1 + c_l)``   - capacities compose (multiply) across layers, so
  depth counts and within-layer size is damped;

and the log-capacity ``E`` of its input embedding (component ``embedding``), weighted by
``beta``. Only ``fit:K`` gives ``beta`` a value other than 0: whether a language model's
quality follows its embedding's size is a property of the training set-up that labels can show
and shapes cannot (on LTS GPT-2 it does, on Transformer-XL it does not; docs/zerolm.md).

Which aggregation and which ``alpha`` rank a population best is a property of the population,
so both are chosen over a set of architectures, by one of three strategies:

- ``fixed``: a given alpha (``--alpha 0.6``);
- ``heuristic``: no labels at all (``--alpha heuristic``). The aggregation is the one under
  which the attention and FFN capacities order the population most consistently (Kendall tau
  between ``A`` and ``F``): both sub-modules measure the same architecture, and an aggregation
  that makes them disagree is mostly measuring parameters that do not add capacity (for example
  FlexiBERT's stacked FFNs). ``alpha = sd(F) / (sd(A) + sd(F))`` then gives both sub-modules
  the same spread over the population, so neither dominates the ranking by scale alone;
- ``fit:K`` ("benchmark sampling"): the aggregation, alpha and beta that maximise Kendall tau
  on K labelled architectures (a grid: 101 alphas in [0, 1] times 21 betas in [0, 1]; beta
  stays 0 where the sample's embeddings are all equal, within 1%); (alpha, beta) is the
  centre of the near-optimal plateau (within 0.01 tau of the best), which is far less noisy
  than the arg-max on 50 points. Evaluated only on the architectures it was not fitted on (see
  ``benchmarks.harness``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from trainfree.proxies.spectral import EMBEDDING

AGGREGATIONS = ("sum", "layer")
ALPHAS = np.linspace(0.0, 1.0, 101)
BETAS = np.linspace(0.0, 1.0, 21)
#: Embedding log-capacities closer than this (1% in capacity) count as equal, and beta stays 0:
#: zerolm's fresh-initialisation spectra carry about 0.3% seed noise, not a signal to fit.
EQUAL_EMBEDDINGS = 0.01


@dataclass(frozen=True)
class Balance:
    """A chosen balance: the weight of attention, the layer aggregation and the weight of the
    embedding (0: left out)."""

    alpha: float
    aggregate: str = "sum"
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate is {self.aggregate!r}; expected one of {AGGREGATIONS}")
        for name in ("alpha", "beta"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} is {getattr(self, name)!r}; expected a finite number")


@dataclass(frozen=True)
class AlphaStrategy:
    """How to choose the balance: ``fixed`` alpha, ``heuristic``, or ``fit`` on ``k`` labels."""

    kind: str
    alpha: float | None = None
    k: int | None = None

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"{self.alpha:g}"
        return f"fit:{self.k}" if self.kind == "fit" else "heuristic"


def parse_alpha(text: str) -> AlphaStrategy:
    """Parse ``--alpha``: a number in [0, 1], ``heuristic``, or ``fit:K`` (K >= 5)."""
    t = text.strip().lower()
    if t == "heuristic":
        return AlphaStrategy("heuristic")
    if t.startswith("fit"):
        k_text = t[4:] if t.startswith("fit:") else ("50" if t == "fit" else "")
        if not k_text.isdigit() or int(k_text) < 5:
            raise ValueError(f"--alpha {text!r}: expected fit:K with an integer K >= 5 (e.g. fit:50)")
        return AlphaStrategy("fit", k=int(k_text))
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"--alpha {text!r}: expected a number in [0, 1], 'heuristic' or 'fit:K'") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--alpha {text!r}: a fixed alpha must lie in [0, 1]")
    return AlphaStrategy("fixed", alpha=value)


def component_names(aggregate: str) -> tuple[str, str]:
    return f"attention_{aggregate}", f"ffn_{aggregate}"


def combine(components: Mapping[str, np.ndarray], balance: Balance) -> np.ndarray:
    """Scores of a population (or one architecture) under ``balance``."""
    a_key, f_key = component_names(balance.aggregate)
    a = np.asarray(components[a_key], dtype=np.float64)
    f = np.asarray(components[f_key], dtype=np.float64)
    score = balance.alpha * a + (1.0 - balance.alpha) * f
    if balance.beta != 0.0:
        if EMBEDDING not in components:
            raise ValueError(f"beta is {balance.beta}, but the components have no {EMBEDDING!r} entry")
        score = score + balance.beta * np.asarray(components[EMBEDDING], dtype=np.float64)
    return score


def _finite(components: Mapping[str, np.ndarray], aggregate: str) -> tuple[np.ndarray, np.ndarray]:
    a_key, f_key = component_names(aggregate)
    a, f = np.asarray(components[a_key], float), np.asarray(components[f_key], float)
    ok = np.isfinite(a) & np.isfinite(f)
    return a[ok], f[ok]


def heuristic_balance(
    components: Mapping[str, np.ndarray], aggregates: Sequence[str] = AGGREGATIONS
) -> Balance:
    """Label-free choice of aggregation and alpha over a population (see module docstring)."""
    best: tuple[float, Balance] | None = None
    for agg in aggregates:
        a, f = _finite(components, agg)
        if len(a) < 3:
            raise ValueError("the heuristic needs at least 3 architectures with finite capacities")
        agreement = stats.kendalltau(a, f).statistic if np.ptp(a) > 0 and np.ptp(f) > 0 else -1.0
        sa, sf = float(np.std(a)), float(np.std(f))
        alpha = sf / (sa + sf) if sa + sf > 0 else 0.5
        if best is None or agreement > best[0]:
            best = (float(agreement), Balance(alpha, agg))
    assert best is not None
    return best[1]


def fit_balance(
    components: Mapping[str, np.ndarray],
    truth: np.ndarray,
    higher_is_better: bool = True,
    aggregates: Sequence[str] = AGGREGATIONS,
    tolerance: float = 0.01,
) -> Balance:
    """Aggregation, alpha and beta maximising Kendall tau with ``truth`` on the given
    (labelled) set."""
    t = np.asarray(truth, dtype=np.float64) * (1.0 if higher_is_better else -1.0)
    best: tuple[float, Balance] | None = None
    for agg in aggregates:
        a_key, f_key = component_names(agg)
        a, f = np.asarray(components[a_key], float), np.asarray(components[f_key], float)
        e = np.asarray(components.get(EMBEDDING, np.zeros_like(a)), float)
        ok = np.isfinite(a) & np.isfinite(f) & np.isfinite(e) & np.isfinite(t)
        a, f, e, y = a[ok], f[ok], e[ok], t[ok]
        betas = BETAS if len(e) and np.ptp(e) > EQUAL_EMBEDDINGS else np.zeros(1)
        alpha_grid, beta_grid = (g.ravel() for g in np.meshgrid(ALPHAS, betas, indexing="ij"))
        scores = alpha_grid[:, None] * a + (1 - alpha_grid[:, None]) * f + beta_grid[:, None] * e
        taus = kendall_taus(scores, y)
        if not np.isfinite(taus).any():
            continue
        floor = np.nanmax(taus) - tolerance
        near = taus >= floor
        alpha, beta = float(alpha_grid[near].mean()), float(beta_grid[near].mean())
        score = kendall_taus((alpha * a + (1 - alpha) * f + beta * e)[None], y)[0]
        if not score >= floor:  # a plateau that is not convex: its nearest point
            i = int(np.argmin(np.where(near, (alpha_grid - alpha) ** 2 + (beta_grid - beta) ** 2, np.inf)))
            alpha, beta, score = float(alpha_grid[i]), float(beta_grid[i]), float(taus[i])
        if best is None or score > best[0]:
            best = (score, Balance(alpha, agg, beta))
    if best is None:
        raise ValueError("cannot fit alpha: no finite Kendall tau on the labelled sample")
    return best[1]


def kendall_taus(scores: np.ndarray, y: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Kendall tau-b of each row of ``scores`` (``[G, n]``) with ``y`` (``[n]``).

    The same statistic as ``scipy.stats.kendalltau`` (tau-b, ties handled), computed for a
    whole grid of candidate balances at once from the signs of all pairwise differences:
    a fit evaluates thousands of candidates, and scipy costs about 0.1 ms per call.
    NaN where a row or ``y`` is constant or ``n < 3``.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    n = scores.shape[1]
    if n < 3:
        return np.full(len(scores), np.nan)
    i, j = np.triu_indices(n, 1)
    sy = np.sign(y[j] - y[i])
    ny = np.count_nonzero(sy)
    out = np.empty(len(scores))
    for lo in range(0, len(scores), chunk):
        sx = np.sign(scores[lo : lo + chunk, j] - scores[lo : lo + chunk, i])
        den = np.sqrt(np.count_nonzero(sx, axis=1) * float(ny))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + chunk] = np.where(den > 0, (sx @ sy) / den, np.nan)
    return out
