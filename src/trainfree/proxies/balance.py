"""Balancing two sub-module capacities: ``score = alpha * A + (1 - alpha) * F``.

A *balanced* proxy (``zerolm``, ``param_mix``) reports, per architecture, the log-capacity of
its attention (``A``) and feed-forward (``F``) sub-modules under two aggregations over layers:

- ``sum``:   ``A = log(1 + sum_l c_l)``   - capacities add up across layers;
- ``layer``: ``A = sum_l log(1 + c_l)``   - capacities compose (multiply) across layers, so
  depth counts and within-layer size is damped.

Which aggregation and which ``alpha`` rank a population best is a property of the population,
so both are chosen over a set of architectures, by one of three strategies:

- ``fixed``: a given alpha (``--alpha 0.6``);
- ``heuristic``: no labels at all (``--alpha heuristic``). The aggregation is the one under
  which the attention and FFN capacities order the population most consistently (Kendall tau
  between ``A`` and ``F``): both sub-modules measure the same architecture, and an aggregation
  that makes them disagree is mostly measuring parameters that do not add capacity (for example
  FlexiBERT's stacked FFNs). ``alpha = sd(F) / (sd(A) + sd(F))`` then gives both sub-modules
  the same spread over the population, so neither dominates the ranking by scale alone;
- ``fit:K`` ("benchmark sampling"): the aggregation and alpha that maximise Kendall tau on K
  labelled architectures; alpha is the centre of the near-optimal plateau (within 0.01 tau
  of the best), which is far less noisy than the arg-max on 50 points. Evaluated only on the
  architectures it was not fitted on (see ``benchmarks.harness``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

AGGREGATIONS = ("sum", "layer")


@dataclass(frozen=True)
class Balance:
    """A chosen balance: the weight of attention and the layer aggregation."""

    alpha: float
    aggregate: str = "sum"

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate is {self.aggregate!r}; expected one of {AGGREGATIONS}")
        if not np.isfinite(self.alpha):
            raise ValueError(f"alpha is {self.alpha!r}; expected a finite number")


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
    return balance.alpha * a + (1.0 - balance.alpha) * f


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
    grid_size: int = 101,
    tolerance: float = 0.01,
) -> Balance:
    """Aggregation and alpha maximising Kendall tau with ``truth`` on the given (labelled) set."""
    t = np.asarray(truth, dtype=np.float64) * (1.0 if higher_is_better else -1.0)
    grid = np.linspace(0.0, 1.0, grid_size)
    best: tuple[float, Balance] | None = None
    for agg in aggregates:
        a_key, f_key = component_names(agg)
        a, f = np.asarray(components[a_key], float), np.asarray(components[f_key], float)
        ok = np.isfinite(a) & np.isfinite(f) & np.isfinite(t)
        taus = np.array([_tau(x * a[ok] + (1 - x) * f[ok], t[ok]) for x in grid])
        if not np.isfinite(taus).any():
            continue
        top = np.nanmax(taus)
        alpha = float(grid[taus >= top - tolerance].mean())
        score = _tau(alpha * a[ok] + (1 - alpha) * f[ok], t[ok])
        if best is None or score > best[0]:
            best = (score, Balance(alpha, agg))
    if best is None:
        raise ValueError("cannot fit alpha: no finite Kendall tau on the labelled sample")
    return best[1]


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0:
        return float("nan")
    return float(stats.kendalltau(x, y).statistic)
