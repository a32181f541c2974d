"""``zerolm``: data-free, gradient-free capacity balance of attention and feed-forward.

After ZeroLM (Chen, Ding, Wang, Pedrycz, "ZeroLM: Data-Free Transformer Architecture Search for
Language Models", arXiv 2503.18646, 2025), re-designed from its summary and measured here:

1. split the Transformer into its functional sub-modules, per layer: the token mixer
   (attention: Q, K, V, output, WMA/DSC weights; parameter-free mixers contribute nothing)
   and the whole feed-forward stack;
2. measure each sub-module's capacity from the singular values of its weight matrices: the
   nuclear norm (sum of singular values), summed over the sub-module's matrices;
3. aggregate over layers (``sum`` or ``layer``, see ``proxies.balance``) into log-capacities
   ``A`` (attention) and ``F`` (FFN) and score ``alpha * A + (1 - alpha) * F``;
4. ``E``, the log-capacity of the input embedding (token tables, projections, positions), is
   reported too: ``--alpha fit:K`` may give it a weight ``beta`` (``+ beta * E``) when the
   labels say so; the label-free strategies leave it out (``beta = 0``).

Why these choices, with the figures that decided them: docs/zerolm.md. ``param_mix`` is the
control: the same machinery with each matrix's capacity replaced by its number of entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from trainfree.proxies import ProxyContext, measure
from trainfree.proxies.balance import Balance, combine
from trainfree.proxies.fastinit import declared_laws, fresh_init_capacities
from trainfree.proxies.spectral import (
    EMBEDDING,
    GROUPS,
    layer_capacities,
    sum_by_layer,
    transformer_matrices,
)

DEFAULT_STATISTIC = "nuclear"


def log_capacities(caps: dict[str, dict[int, float]]) -> dict[str, float]:
    """Both aggregations of per-layer capacities, ``{attention,ffn}_{sum,layer}``, and the
    embedding's log-capacity ``embedding`` (one table, nothing to aggregate)."""
    out: dict[str, float] = {}
    for group in GROUPS:
        values = np.array(list(caps.get(group, {}).values()), dtype=np.float64)
        out[f"{group}_sum"] = float(np.log1p(values.sum()))
        out[f"{group}_layer"] = float(np.log1p(values).sum())
    out[EMBEDDING] = float(np.log1p(sum(caps.get(EMBEDDING, {}).values())))
    return out


def zerolm_components(
    model: nn.Module, statistic: str = DEFAULT_STATISTIC, fresh_init: bool = False
) -> dict[str, float]:
    """Sub-module log-capacities of any Transformer module (see ``transformer_matrices``)."""
    return log_capacities(layer_capacities(model, statistic, fresh_init))


def zerolm_score(
    model: nn.Module,
    alpha: float = 0.5,
    aggregate: str = "sum",
    statistic: str = DEFAULT_STATISTIC,
    beta: float = 0.0,
) -> float:
    """The ``zerolm`` score of a given module (pre-trained weights welcome: exact SVDs)."""
    return float(combine(zerolm_components(model, statistic), Balance(alpha, aggregate, beta)))


@measure("zerolm", needs_model=False, balanced=True, version=2)
def zerolm(space: Any, config: Any, ctx: ProxyContext) -> dict[str, float]:
    """Data-free spectral capacity of attention and FFN, balanced by alpha (ZeroLM)."""
    statistic = ctx.options.get("statistic", DEFAULT_STATISTIC)
    if ctx.fresh_init and not ctx.options.get("build", False):
        # the space's own fresh init: shapes and init laws suffice (proxies.fastinit);
        # the same value whether or not another proxy built the model
        caps = fresh_init_capacities(space, config, ctx.seed, statistic)
        if caps is not None:
            return log_capacities(caps)
    model = ctx.model(space, config)  # a law could not be derived, or a given module
    return zerolm_components(model, statistic, fresh_init=ctx.fresh_init)


@measure("param_mix", needs_model=False, balanced=True, version=2)
def param_mix(space: Any, config: Any, ctx: ProxyContext) -> dict[str, float]:
    """Control for zerolm: attention/FFN(/embedding) parameter counts balanced, no spectra."""
    if ctx.given_model is None:
        laws = declared_laws(space, config, ctx.seed)  # shapes without a meta build
        if laws is not None:
            return log_capacities(sum_by_layer(laws, (law.rows * law.cols for law in laws)))
    model = ctx.given_model or space.build(config, device="meta")
    mats = transformer_matrices(model)
    return log_capacities(sum_by_layer(mats, (m.weight.numel() for m in mats)))
