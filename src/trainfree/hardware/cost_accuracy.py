"""How well predicted costs match measured ones: the held-out figures a cost model reports
and the search's trust decision reads (:mod:`trainfree.hardware.costmodel`)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

#: pairs whose measured costs differ by less than this (relative) are not judged for their
#: order: within the frontier's resolution and a busy machine's noise
DISTINCT = 0.10


def pairs_ordered(predicted: np.ndarray, measured: np.ndarray, distinct: float = DISTINCT) -> float:
    """The share of pairs whose measured values differ by more than ``distinct`` (relative)
    that ``predicted`` orders the same way (NaN without such pairs)."""
    p, y = np.asarray(predicted, float), np.asarray(measured, float)
    i, j = np.triu_indices(len(y), k=1)
    far = np.abs(y[i] - y[j]) > distinct * np.minimum(y[i], y[j])
    if not far.any():
        return math.nan
    return float(np.mean(np.sign(p[i] - p[j])[far] == np.sign(y[i] - y[j])[far]))


def accuracy(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Spearman, median and 90th-percentile absolute % error, the share within +-10%, and the
    share of distinct pairs in order (:func:`pairs_ordered`)."""
    p, y = np.asarray(predicted, float), np.asarray(measured, float)
    err = np.abs(p / y - 1.0)
    # constant predictions (an activation model left with its intercept) have no rank
    rho = float(spearmanr(p, y)[0]) if len(y) > 2 and np.ptp(y) > 0 and np.ptp(p) > 0 else math.nan
    return {
        "n": len(y),
        "spearman": rho,
        "median_ape": float(np.median(err)) if len(err) else math.nan,
        "p90_ape": float(np.percentile(err, 90)) if len(err) else math.nan,
        "within_10pct": float(np.mean(err <= 0.10)) if len(err) else math.nan,
        "pairs_ordered": pairs_ordered(p, y) if len(y) > 1 else math.nan,
    }


__all__ = ["DISTINCT", "accuracy", "pairs_ordered"]
