"""The ``fit:K`` balance: the aggregation, alpha and beta that order K labelled architectures
best (Kendall tau over a grid of candidates; the centre of the near-optimal plateau).

Kept apart from the label-free choices of :mod:`trainfree.proxies.balance`: it is the only
one that reads labels, and its vectorised Kendall tau evaluates the whole grid at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trainfree.proxies.balance_score import AGGREGATIONS, Balance, component_names
from trainfree.proxies.spectral import EMBEDDING

ALPHAS = np.linspace(0.0, 1.0, 101)
BETAS = np.linspace(0.0, 1.0, 21)
#: Embedding log-capacities closer than this (1% in capacity) count as equal, and beta stays 0:
#: zerolm's fresh-initialisation spectra carry about 0.3% seed noise, not a signal to fit.
EQUAL_EMBEDDINGS = 0.01


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
