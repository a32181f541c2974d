"""A balance and the score it makes: ``score = alpha * A + (1 - alpha) * F + beta * E``.

What a balanced proxy's value is (:class:`ProxyValue`: its components, or a plain score) and
how a :class:`Balance` combines the components (:func:`combine`). How a balance is *chosen*
(priors, strategies, the fit on labels) is :mod:`trainfree.proxies.balance`; this module is
what the proxies and a saved run need to turn components into scores, without that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.proxies.spectral import EMBEDDING

AGGREGATIONS = ("sum", "layer")


@dataclass(frozen=True)
class Balance:
    """A chosen balance: the weight of attention, the layer aggregation and the weight of the
    embedding (0: left out)."""

    alpha: float
    aggregate: str = "sum"
    beta: float = 0.0
    reason: str = field(default="", compare=False)  # why this balance, for reports
    #: the space whose published benchmark this balance was fitted on ("": none)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate is {self.aggregate!r}; expected one of {AGGREGATIONS}")
        for name in ("alpha", "beta"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} is {getattr(self, name)!r}; expected a finite number")

    @classmethod
    def from_dict(cls, d: Any) -> Balance:
        """A balance saved as JSON (a run's log); ValueError, naming the field, if it is not one."""
        if not isinstance(d, Mapping):
            raise ValueError(f"balance is {type(d).__name__}; expected an object")
        try:
            numbers = {k: float(d[k]) for k in ("alpha", "beta") if k in d}
            if "alpha" not in numbers or isinstance(d["alpha"], bool):
                raise ValueError("alpha missing")
            texts = {k: str(d[k]) for k in ("aggregate", "reason", "source") if k in d}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"balance: alpha and beta must be numbers ({exc})") from None
        return cls(**numbers, **texts)


#: what a label-free choice falls back to: equal weights, capacities summed over layers
SAFE_DEFAULT = Balance(0.5, "sum", reason="safe default: alpha 0.5, sum (no prior for this space)")


@dataclass(frozen=True)
class ProxyValue:
    """One proxy evaluation of one architecture: a score, or a balanced proxy's components
    (sub-module log-capacities) that a :class:`Balance` turns into a score."""

    score: float | None = None
    components: Mapping[str, float] | None = None

    @classmethod
    def of(cls, raw: float | Mapping[str, float]) -> ProxyValue:
        return cls(components=dict(raw)) if isinstance(raw, Mapping) else cls(score=float(raw))

    @property
    def balanced(self) -> bool:
        return self.components is not None

    def value(self, balance: Balance | None = None) -> float:
        """The score; a balanced value needs the population's ``balance`` (default: the
        safe default)."""
        if self.components is None:
            return float(self.score)  # type: ignore[arg-type]
        return float(combine(self.components, balance or SAFE_DEFAULT))


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
