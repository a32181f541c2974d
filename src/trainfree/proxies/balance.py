"""Balancing sub-module capacities: ``score = alpha * A + (1 - alpha) * F + beta * E``.

A *balanced* proxy (``zerolm``, ``param_mix``) reports, per architecture, the log-capacity of
its attention (``A``) and feed-forward (``F``) sub-modules under two aggregations over layers:

- ``sum``:   ``A = log(1 + sum_l c_l)``   - capacities add up across layers;
- ``layer``: ``A = sum_l log(1 + c_l)``   - capacities compose (multiply) across layers, so
  depth counts and within-layer size is damped;

and the log-capacity ``E`` of its input embedding (component ``embedding``), weighted by
``beta``. Only labels give ``beta`` a value other than 0 (``fit:K``, or a balance fitted on
a published benchmark and transferred): whether a language model's quality follows its
embedding's size is a property of the training set-up that labels can show and shapes cannot
(docs/zerolm.md).

Everything that decides a balance lives here, in :func:`choose`; the harness and the search
call it (``combine`` applies the result). Strategies (``--alpha``):

- ``heuristic`` (the label-free default): a prior for the space, stated with its source. No
  population is involved, so the choice cannot depend on a benchmark's sample or on a
  search's first generation. In order:

  1. a **transferred balance** (:mod:`trainfree.proxies.transferred`): for the causal
     language-model spaces (``gpt2``, ``transxl``), the balance that ``fit_balance`` gives on
     all of the space's published benchmark (LiteTransformerSearch's trained models), per
     balanced proxy. On a new corpus it is a prior carried over, not a fit; on its own source
     benchmark the harness judges it held out (refitted on half, judged on the other half),
     never in-sample. ``benchmarks/balance_priors.py`` derives it and prints the evidence;
  2. the space's **aggregation prior** (:data:`AGGREGATION_PRIORS`) with alpha 0.5 and beta
     0: ``layer`` for FlexiBERT, transferred from its published benchmark (NAS-Bench-BERT),
     where a fitted alpha did not lower the held-out regret; ``sum`` for the language-model
     spaces; a space may declare its own as a class attribute ``zerolm_aggregation``;
  3. otherwise the safe default, ``sum`` with alpha 0.5, a mix of sub-module parameter
     counts that cannot do much worse than counting parameters;
- ``fixed`` (``--alpha 0.6``): that alpha with the space's prior aggregation;
- ``agreement``: the former label-free rule, kept for comparison: the aggregation under which
  ``A`` and ``F`` order the population most consistently (Kendall tau), and
  ``alpha = sd(F) / (sd(A) + sd(F))``. docs/zerolm.md shows why it is not the default: on a
  sample of the GPT-2 or Transformer-XL space it picks ``layer``, the wrong aggregation;
- ``fit:K`` ("benchmark sampling"): the aggregation, alpha and beta that maximise Kendall tau
  on K labelled architectures (a grid: 101 alphas in [0, 1] times 21 betas in [0, 1]; beta
  stays 0 where the sample's embeddings are all equal, within 1%); (alpha, beta) is the
  centre of the near-optimal plateau (within 0.01 tau of the best), which is far less noisy
  than the arg-max on 50 points. Evaluated only on the architectures it was not fitted on (see
  ``bench.harness``).

A population too small (fewer than :data:`MIN_POPULATION` finite architectures) or too
uniform (a constant component) for ``agreement`` gets a warning that says so and the safe
default; non-finite components are reported with the architectures' ids.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from trainfree.proxies.balance_fit import ALPHAS, BETAS, EQUAL_EMBEDDINGS, fit_balance, kendall_taus
from trainfree.proxies.balance_score import (
    AGGREGATIONS,
    SAFE_DEFAULT,
    Balance,
    ProxyValue,
    combine,
    component_names,
)
from trainfree.proxies.transferred import TRANSFERRED

__all__ = [  # the balance's value and its fit, re-exported: callers import them from here
    "AGGREGATIONS",
    "AGGREGATION_PRIORS",
    "ALPHAS",
    "BETAS",
    "EQUAL_EMBEDDINGS",
    "MIN_POPULATION",
    "SAFE_DEFAULT",
    "AlphaStrategy",
    "Balance",
    "ProxyValue",
    "carried_balance",
    "choose",
    "combine",
    "component_names",
    "entry_digest",
    "fit_balance",
    "fitted_on",
    "heuristic_balance",
    "kendall_taus",
    "parse_alpha",
    "prior_balance",
    "transferred_balance",
]


#: label-free aggregation priors per space: (aggregation, the reason, stated)
AGGREGATION_PRIORS: dict[str, tuple[str, str]] = {
    "gpt2": ("sum", "causal LM: loss follows total non-embedding capacity (Kaplan et al. 2020)"),
    "transxl": ("sum", "causal LM: loss follows total non-embedding capacity (Kaplan et al. 2020)"),
    "flexibert": ("layer", "transferred from the space's published benchmark (NAS-Bench-BERT)"),
    "flexibert-published": ("layer", "transferred from the space's published benchmark (NAS-Bench-BERT)"),
}
#: the fewest finite architectures a population rule (``agreement``) decides on
MIN_POPULATION = 20


@dataclass(frozen=True)
class AlphaStrategy:
    """How to choose the balance: ``fixed`` alpha, ``heuristic`` (the label-free default),
    ``agreement`` (the former population rule) or ``fit`` on ``k`` labels."""

    kind: str
    alpha: float | None = None
    k: int | None = None

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"{self.alpha:g}"
        return f"fit:{self.k}" if self.kind == "fit" else self.kind


def parse_alpha(text: str) -> AlphaStrategy:
    """Parse ``--alpha``: a number in [0, 1], ``heuristic``, ``agreement`` or ``fit:K`` (K >= 5)."""
    t = text.strip().lower()
    if t in ("heuristic", "agreement"):
        return AlphaStrategy(t)
    if t.startswith("fit"):
        k_text = t[4:] if t.startswith("fit:") else ("50" if t == "fit" else "")
        if not k_text.isdigit() or int(k_text) < 5:
            raise ValueError(f"--alpha {text!r}: expected fit:K with an integer K >= 5 (e.g. fit:50)")
        return AlphaStrategy("fit", k=int(k_text))
    try:
        value = float(t)
    except ValueError:
        raise ValueError(
            f"--alpha {text!r}: expected a number in [0, 1], 'heuristic', 'agreement' or 'fit:K'"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--alpha {text!r}: a fixed alpha must lie in [0, 1]")
    return AlphaStrategy("fixed", alpha=value)


def prior_balance(space: Any = None, alpha: float | None = None, proxy: str | None = None) -> Balance:
    """The label-free default of ``proxy`` on ``space`` (see the module docstring): the
    transferred balance when there is one and ``alpha`` is not given, else the aggregation
    prior (a class attribute ``zerolm_aggregation``, else :data:`AGGREGATION_PRIORS`, else
    ``sum``) with ``alpha`` (default 0.5) and beta 0."""
    declared = getattr(space, "zerolm_aggregation", None)
    if alpha is None and getattr(space, "balance_carried_from", None):
        carried = carried_balance(space, proxy)
        if carried is not None:
            return carried
    if alpha is None:
        moved = transferred_balance(getattr(space, "name", None), proxy)
        if moved is not None and declared is None:
            return moved
        alpha = 0.5
    if declared in AGGREGATIONS:
        return Balance(alpha, declared, reason=f"prior declared by space {space.name}")
    name = getattr(space, "name", None)
    if name in AGGREGATION_PRIORS:
        agg, why = AGGREGATION_PRIORS[name]
        return Balance(alpha, agg, reason=f"prior for {name}: {agg} ({why})")
    return Balance(alpha, SAFE_DEFAULT.aggregate, reason=SAFE_DEFAULT.reason)


def choose(
    strategy: AlphaStrategy | str,
    components: Mapping[str, np.ndarray] | None = None,
    labels: np.ndarray | None = None,
    *,
    space: Any = None,
    higher_is_better: bool = True,
    ids: Sequence[str] | None = None,
    proxy: str | None = None,
) -> Balance:
    """The one place a balance is chosen (harness and search alike).

    ``components``: the population's components (arrays, one entry per architecture; needed
    by ``agreement`` and ``fit``). ``labels``: ground truth of the same architectures (``fit``
    only). ``space`` and ``proxy`` (the balanced proxy's name): whose prior ``heuristic`` and
    ``fixed`` use. ``ids``: the architectures' ids, to name those with non-finite components.
    """
    if isinstance(strategy, str):
        strategy = parse_alpha(strategy)
    if strategy.kind == "heuristic":
        return prior_balance(space, proxy=proxy)
    if strategy.kind == "fixed":
        return prior_balance(space, float(strategy.alpha), proxy)  # type: ignore[arg-type]
    if components is None:
        raise ValueError(f"--alpha {strategy}: needs the population's components")
    if strategy.kind == "fit":
        if labels is None:
            raise ValueError(f"--alpha {strategy}: needs labels (ground truth) for the fitting sample")
        return fit_balance(components, labels, higher_is_better)
    if strategy.kind == "agreement":
        return _agreement_balance(_drop_non_finite(components, ids))
    raise ValueError(f"unknown alpha strategy {strategy.kind!r}")


def heuristic_balance(
    components: Mapping[str, np.ndarray] | None = None,
    aggregates: Sequence[str] = AGGREGATIONS,
    space: Any = None,
    proxy: str | None = None,
) -> Balance:
    """The label-free default, ``choose("heuristic", space=space, proxy=proxy)`` (kept for
    callers of the former API; ``components`` are not needed any more)."""
    return choose(AlphaStrategy("heuristic"), components, space=space, proxy=proxy)


def transferred_balance(space: str | None, proxy: str | None) -> Balance | None:
    """The balance of ``proxy`` fitted on ``space``'s published benchmark, if there is one."""
    entry = TRANSFERRED.get(space or "", {})
    fitted = entry.get("balances", {}).get(proxy or "")
    if fitted is None:
        return None
    why = f"fitted on the {entry['n']} trained models of {entry['benchmark']} and transferred"
    return Balance(fitted["alpha"], fitted["aggregate"], fitted["beta"], reason=why, source=space or "")


def carried_balance(space: Any, proxy: str | None) -> Balance | None:
    """A space without trained models (``llama``) that names a source space in
    ``balance_carried_from`` gets that space's transferred alpha and aggregation, without its
    embedding weight beta: there the vocabulary is a tokenizer choice, and losses measured
    with different tokenizers are not comparable, so no benchmark could have fitted it."""
    source = space.balance_carried_from
    moved = transferred_balance(source, proxy)
    if moved is None:
        return None
    why = (
        f"carried over from {source} ({moved.reason}; the nearest space with trained models), "
        "embedding weight dropped (the vocabulary is a tokenizer choice here)"
    )
    return Balance(moved.alpha, moved.aggregate, 0.0, reason=why)


def entry_digest(arch_id: str, truth: float) -> str:
    """A short fingerprint of one benchmark entry (its id and ground truth, either sign), so
    that a transferred balance can tell its own source benchmark from another set of the space."""
    return hashlib.sha256(f"{arch_id}\t{abs(float(truth)):.6g}".encode()).hexdigest()[:8]


def fitted_on(balance: Balance, ids: Sequence[str], truth: np.ndarray) -> bool:
    """Whether any of these architectures belongs to the benchmark ``balance`` was fitted on."""
    known = set(TRANSFERRED.get(balance.source, {}).get("entries", ())) if balance.source else set()
    return any(entry_digest(i, t) in known for i, t in zip(ids, truth, strict=True))


def _drop_non_finite(
    components: Mapping[str, np.ndarray], ids: Sequence[str] | None
) -> dict[str, np.ndarray]:
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in components.items()}
    ok = np.logical_and.reduce([np.isfinite(v) for v in arrays.values()]) if arrays else np.array([])
    if arrays and not ok.all():
        bad = np.flatnonzero(~ok)
        named = [str(ids[i]) for i in bad[:10]] if ids is not None else [f"#{i}" for i in bad[:10]]
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        warnings.warn(
            f"non-finite components for {len(bad)} architecture(s), left out of the balance: "
            + ", ".join(named)
            + more,
            RuntimeWarning,
            stacklevel=3,
        )
    return {k: v[ok] for k, v in arrays.items()}


def _agreement_balance(components: Mapping[str, np.ndarray]) -> Balance:
    """The former label-free rule over a population (see the module docstring); the safe
    default, with a warning, when the population is too small or too uniform to decide."""
    n = min((len(v) for v in components.values()), default=0)
    if n < MIN_POPULATION:
        why = f"{n} architectures with finite components, fewer than {MIN_POPULATION}"
        return _unsure(why)
    best: tuple[float, Balance] | None = None
    for agg in AGGREGATIONS:
        a_key, f_key = component_names(agg)
        a, f = components[a_key], components[f_key]
        if np.ptp(a) == 0 or np.ptp(f) == 0:
            return _unsure(f"a constant component ({a_key if np.ptp(a) == 0 else f_key}) over the population")
        agreement = float(stats.kendalltau(a, f).statistic)
        sa, sf = float(np.std(a)), float(np.std(f))
        reason = f"agreement: {agg} orders A and F most consistently (tau {agreement:.3f})"
        if best is None or agreement > best[0]:
            best = (agreement, Balance(sf / (sa + sf), agg, reason=reason))
    assert best is not None
    return best[1]


def _unsure(why: str) -> Balance:
    warnings.warn(
        f"cannot choose a balance from this population ({why}); using the safe default (alpha 0.5, sum)",
        RuntimeWarning,
        stacklevel=4,
    )
    return Balance(SAFE_DEFAULT.alpha, SAFE_DEFAULT.aggregate, reason=f"safe default: {why}")
