"""Rank-correlation evaluation of proxy scores against trained quality.

Convention: a proxy's score is "higher = better model". When the ground truth is
lower-is-better (perplexity) it is negated before correlating, so a good proxy always gets a
positive rho and tau on every benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RankResult:
    """Correlations of one proxy with the ground truth, with bootstrap 95% intervals."""

    n: int
    spearman: float
    kendall: float
    pearson: float
    spearman_ci: tuple[float, float]
    kendall_ci: tuple[float, float]
    top10_precision: float
    n_invalid: int = 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["spearman_ci"] = list(self.spearman_ci)
        d["kendall_ci"] = list(self.kendall_ci)
        return d


def top_fraction_precision(scores: np.ndarray, truth: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the proxy's top ``fraction`` that is also in the true top ``fraction``
    (both higher-is-better); what a user who trains only the proxy's favourites gets."""
    k = max(1, round(fraction * len(scores)))
    top_pred = set(np.argsort(-scores, kind="stable")[:k])
    top_true = set(np.argsort(-truth, kind="stable")[:k])
    return len(top_pred & top_true) / k


def rank_correlation(
    scores: np.ndarray | list[float],
    truth: np.ndarray | list[float],
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> RankResult:
    """Spearman, Kendall (tau-b) and Pearson between ``scores`` and ``truth``.

    Architectures whose score is NaN/inf (a proxy that failed on them) are left out and
    counted in ``n_invalid``. Intervals are percentile bootstrap over architectures.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and truth {t.shape} must be 1-D of equal length")
    ok = np.isfinite(s) & np.isfinite(t)
    s, t = s[ok], t[ok]
    if not higher_is_better:
        t = -t
    n_invalid = int((~ok).sum())
    if len(s) < 3:
        nan = float("nan")
        return RankResult(len(s), nan, nan, nan, (nan, nan), (nan, nan), nan, n_invalid)
    rho = _safe(stats.spearmanr(s, t).statistic)
    tau = _safe(stats.kendalltau(s, t).statistic)
    r = _safe(stats.pearsonr(s, t).statistic) if np.ptp(s) > 0 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(s), size=(n_boot, len(s)))
    rhos = _spearman_rows(s[idx], t[idx])
    if len(s) <= 100:
        taus = _kendall_rows(s[idx], t[idx])
    else:  # scipy's O(n log n) beats the pairwise form on large samples
        taus = np.array([_safe(stats.kendalltau(s[i], t[i]).statistic) for i in idx])
    return RankResult(
        n=len(s),
        spearman=rho,
        kendall=tau,
        pearson=r,
        spearman_ci=_interval(rhos),
        kendall_ci=_interval(taus),
        top10_precision=top_fraction_precision(s, t),
        n_invalid=n_invalid,
    )


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair (as ``scipy.stats.spearmanr``: Pearson of average ranks);
    NaN where a row is constant."""
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / den
    return np.where(den > 0, np.clip(rho, -1.0, 1.0), np.nan)


def _kendall_rows(a: np.ndarray, b: np.ndarray, chunk_cells: int = 2_000_000) -> np.ndarray:
    """Kendall tau-b of each row pair (as ``scipy.stats.kendalltau``), from pairwise signs;
    NaN where a row is constant."""
    n_rows, n = a.shape
    out = np.empty(n_rows)
    pairs = n * (n - 1) / 2
    step = max(1, chunk_cells // (n * n))
    for lo in range(0, n_rows, step):
        x, y = a[lo : lo + step], b[lo : lo + step]
        dx = np.sign(x[:, :, None] - x[:, None, :])
        dy = np.sign(y[:, :, None] - y[:, None, :])
        concord = (dx * dy).sum(axis=(1, 2)) / 2  # concordant - discordant pairs
        tied_x = ((dx == 0).sum(axis=(1, 2)) - n) / 2
        tied_y = ((dy == 0).sum(axis=(1, 2)) - n) / 2
        den = np.sqrt((pairs - tied_x) * (pairs - tied_y))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + step] = np.where(den > 0, concord / den, np.nan)
    return np.clip(out, -1.0, 1.0)


def _safe(x: float) -> float:
    return float(x) if x is not None else float("nan")


def _interval(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(v, [2.5, 97.5])
    return (float(lo), float(hi))


def tau_iso(
    scores: np.ndarray | list[float],
    truth: np.ndarray | list[float],
    sizes: np.ndarray | list[float],
    higher_is_better: bool = True,
    tolerance: float = 0.10,
) -> float:
    """Kendall tau-b over the pairs of architectures whose sizes (parameter counts) lie within
    ``tolerance`` of each other (``|p_i - p_j| <= tolerance * max(p_i, p_j)``): the
    "size-matched" tau of Neural Spectral Capacity (arXiv 2609.23087). It shows what a proxy
    knows beyond size. NaN with no such pair, or when the proxy ties every one of them."""
    s, t, p = (np.asarray(x, dtype=np.float64) for x in (scores, truth, sizes))
    ok = np.isfinite(s) & np.isfinite(t) & np.isfinite(p)
    s, t, p = s[ok], t[ok] * (1.0 if higher_is_better else -1.0), p[ok]
    i, j = np.triu_indices(len(s), 1)
    near = np.abs(p[i] - p[j]) <= tolerance * np.maximum(p[i], p[j])
    i, j = i[near], j[near]
    ds, dt = np.sign(s[j] - s[i]), np.sign(t[j] - t[i])
    den = np.sqrt(float(np.count_nonzero(ds)) * float(np.count_nonzero(dt)))
    return float((ds * dt).sum() / den) if den > 0 else float("nan")
