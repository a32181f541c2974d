"""Attention-head proxies (NAS-Bench-BERT's, Serianni & Kalita 2023, and Voita et al. 2019's).

* ``head_importance``: ``sum |W * dL/dW|`` over the per-head projections of every token mixer
  (``_lm.head_projections``: query/key/value and their variants, not the output projection;
  the notebook's ``out_features >= 128`` filter removed exactly ConvBERT's kernel predictor);
* ``head_confidence``: the notebook's formula on the per-head projections' outputs ``[B, T, C]``:
  per output, the mean over sequences and channels of the maximum over *tokens*, summed;
* ``softmax_confidence`` ("head softmax confidence"): the same formula on every layer's softmax
  output ``[B, h, T, K]``. The notebook's ``max(output, 1)`` takes the maximum over the *heads*
  axis; that is kept, because it is what the published values are;
* ``attention_confidence``: Voita et al.'s head confidence, the maximum attention probability
  of each query (over keys), averaged over sequences, heads and queries, summed over layers.
  Only real attention softmaxes count (flexibert's Fourier/DCT layers have none).

All "higher = better", as published.
"""

from __future__ import annotations

from typing import Any

from trainfree.proxies import ProxyContext, measure
from trainfree.proxies._lm import (
    attention_probabilities,
    backward_pass,
    batch_first,
    head_projections,
    recorded_forward,
    saliency,
    token_batch,
)


@measure("head_importance", needs_data=True, needs_grad=True)
def head_importance(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum of |W * dL/dW| over the per-head attention projections (Serianni & Kalita, after Michel et al.)."""
    model = ctx.model(space, config)
    with backward_pass(model, token_batch(space, config, ctx), ctx):
        return saliency(head_projections(model))


@measure("head_confidence", needs_data=True)
def head_confidence(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum over head projections of the mean of their maximum output over tokens (Serianni & Kalita)."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx)
    outputs = recorded_forward(model, head_projections(model), ids, ctx.seed)
    return float(sum(batch_first(model, out).max(dim=1).values.mean() for out in outputs))


@measure("softmax_confidence", needs_data=True)
def softmax_confidence(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum over layers of the mean of the softmax output's maximum over heads (Serianni & Kalita)."""
    model = ctx.model(space, config)
    probs = attention_probabilities(model, token_batch(space, config, ctx), ctx.seed, with_lt=True)
    return float(sum(p.max(dim=1).values.mean() for p in probs))


@measure("attention_confidence", needs_data=True)
def attention_confidence(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum over layers of the mean maximum attention probability of each query (Voita et al. 2019)."""
    model = ctx.model(space, config)
    probs = attention_probabilities(model, token_batch(space, config, ctx), ctx.seed, with_lt=False)
    return float(sum(p.max(dim=-1).values.mean() for p in probs))
