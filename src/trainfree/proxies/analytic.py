"""Analytic proxies: computed from the config alone, no model built, no data, no gradients.

``decoder_params`` is the LiteTransformerSearch proxy (Javaheripi et al., NeurIPS 2022): the
non-embedding parameter count ranks GPT-2 / Transformer-XL perplexity almost perfectly.
"""

from __future__ import annotations

from typing import Any

from trainfree.proxies import ProxyContext, measure


@measure("params", needs_model=False)
def params(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Total number of parameters (tied tensors counted once)."""
    return float(space.param_counts(config).total)


@measure("decoder_params", needs_model=False)
def decoder_params(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Non-embedding ("decoder") parameters, as LiteTransformerSearch defines them."""
    return float(space.param_counts(config).decoder)


@measure("flops", needs_model=False)
def flops(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Forward FLOPs of one sequence (length ``ctx.seq_len``, default the space's maximum)."""
    seq_len = ctx.seq_len or space.max_seq_len(config)
    return float(space.flops(config, seq_len))
