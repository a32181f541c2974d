"""Measurement sessions: latencies measured at different times put on one level.

A machine's speed drifts. On the 2-core development VM the same 40 GPT-2 models, measured
in three quiet sessions of one day, ran a median 1.12x slower in the first than in the last
(10th-90th percentile 1.07-1.17) and 1.00x in the second, while two measurements minutes
apart agree within 2%. Memory does not drift (ratio 1.00). The drift is mostly one factor
common to every model, which is what noisy neighbours and frequency scaling would give.

The cost model pools the measurements of every run on the machine (``RowCache``), so without
care a model fitted on an earlier session's rows predicts today's latencies 10% off, and a
few fresh measurements cannot pull a fit dominated by old rows back: fitted on 150 rows of
the slow session and 8 fresh ones, the model put 55% of held-out models within 10%;
levelled, 90% (``bench_costs.py drift``, docs/search.md).

So each measurement carries its time (``measured_at``), rows are grouped into sessions (a
new one after a pause of ``GAP_S``, or once one has run ``SPAN_S``), and each session's
latencies are scaled by one factor onto the level of the latest session: the median ratio of
the latest session's measurements to the model's predictions, over that of the session's own,
with the model refitted on the levelled rows a few times. A factor needs a few rows to be
worth more than its noise: a session with fewer than ``MIN_ROWS`` joins the one before it.
Rows without a time (cached before this change) form one session of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: a pause that starts a new session, the longest a session runs, the fewest rows it needs
GAP_S, SPAN_S, MIN_ROWS = 600.0, 1800.0, 4
#: what a run whose cached rows are all from earlier sessions measures first: with 8 fresh
#: rows beside 150 of a session 12% slower, 90% of held-out GPT-2 models came within 10%
#: (4: 82%; docs/search.md)
FRESH_ROWS = 8
#: alternations of fit and levelling (the factors settle after two on measured data); a
#: session's factor is used only where it lies this many standard errors from 1
ROUNDS, SIGNIFICANCE = 3, 2.0
#: the relative difference of two measurements of one model minutes apart (median, GPT-2
#: on the development VM: 1.9-2.1%; ``bench_costs.py accuracy --remeasure``)
REPEATABILITY = 0.02


def measured_at(value: Any) -> float:
    """A row's measurement time as a finite number, else NaN (unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value) if math.isfinite(value) and value > 0 else math.nan


def earlier_session(at: Any, now: float) -> bool:
    """Whether a single measurement taken at ``at`` is certainly of an earlier session than
    ``now``'s: more than ``SPAN_S`` ago, longer than any session runs (unknown times: no)."""
    t = measured_at(at)
    return math.isfinite(t) and now - t > SPAN_S


def stale(times: Sequence[Any], now: float) -> bool:
    """Whether no row was measured in the session that ``now`` is in (none within ``GAP_S``):
    a run then measures a few architectures first, so that its predictions are levelled to
    the machine as it runs now, not to the last session's speed."""
    known = [t for t in (measured_at(v) for v in times) if math.isfinite(t)]
    return not known or now - max(known) > GAP_S


def sessions(times: Sequence[Any]) -> np.ndarray:
    """A session label per row (0 = the earliest; rows without a time: one session before
    all others, labelled -1)."""
    t = np.array([measured_at(v) for v in times], dtype=float)
    labels = np.full(len(t), -1, dtype=int)
    known = np.flatnonzero(np.isfinite(t))
    order = known[np.argsort(t[known], kind="stable")]
    groups: list[list[int]] = []
    for i in order:
        if groups and t[i] - t[groups[-1][-1]] <= GAP_S and t[i] - t[groups[-1][0]] <= SPAN_S:
            groups[-1].append(i)
        else:
            groups.append([i])
    merged: list[list[int]] = []
    for g in groups:  # a session too small for its own factor joins the one before it
        if merged and len(g) < MIN_ROWS:
            merged[-1].extend(g)
        else:
            merged.append(g)
    if len(merged) > 1 and len(merged[0]) < MIN_ROWS:  # ... or, the first, the one after it
        merged[1] = merged[0] + merged[1]
        merged.pop(0)
    for k, g in enumerate(merged):
        labels[g] = k
    return labels


def level(
    y: np.ndarray, labels: np.ndarray, predict: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, dict[int, float]]:
    """``y`` on the latest session's level, and each session's factor (its latencies over
    the latest session's, for the same model). ``predict(y)`` fits on ``y`` and returns the
    in-sample predictions."""
    y = np.asarray(y, dtype=float)
    present = sorted(set(labels.tolist()))
    if len(present) < 2:
        return y, {k: 1.0 for k in present}
    latest = max(present)
    factors = {k: 1.0 for k in present}
    for _ in range(ROUNDS):
        levelled = y / np.array([factors[k] for k in labels])
        log_ratio = np.log(levelled / np.maximum(predict(levelled), 1e-9))
        median = {k: float(np.median(log_ratio[labels == k])) for k in present}
        factors = {k: factors[k] * math.exp(median[k] - median[latest]) for k in present}
    # a difference within the noise of the two medians is no drift: left alone, as before
    spread = {k: _median_se(log_ratio[labels == k]) for k in present}
    for k in present:
        if abs(math.log(factors[k])) < SIGNIFICANCE * math.hypot(spread[k], spread[latest]):
            factors[k] = 1.0
    return y / np.array([factors[k] for k in labels]), factors


def _median_se(x: np.ndarray) -> float:
    """The standard error of a sample's median (1.253 sigma / sqrt(n)), sigma from the MAD
    but never below ``REPEATABILITY``: a few rows can agree by chance more closely than two
    measurements of one model do."""
    sigma = max(1.4826 * float(np.median(np.abs(x - np.median(x)))), REPEATABILITY)
    return 1.253 * sigma / math.sqrt(len(x))


def describe(labels: np.ndarray, times: Sequence[Any], factors: dict[int, float]) -> list[dict[str, Any]]:
    """Per session: its first and last measurement time, its row count and factor (JSON-ready)."""
    t = np.array([measured_at(v) for v in times], dtype=float)
    out = []
    for k in sorted(factors):
        sel = labels == k
        known = t[sel][np.isfinite(t[sel])]
        out.append(
            {
                "start": float(known.min()) if len(known) else None,
                "end": float(known.max()) if len(known) else None,
                "n": int(sel.sum()),
                "factor": round(float(factors[k]), 4),
            }
        )
    return out
