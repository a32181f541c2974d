"""Activation and input-Jacobian proxies.

* ``activation_distance`` (NAS-Bench-BERT, Serianni & Kalita 2023; after NASWOT, Mellor et al.
  2021): the binary codes ``c = [x > 0]`` of every feed-forward nonlinearity's output, for the
  tokens of the *first* sequence of the batch; per nonlinearity call the sum of the NASWOT
  kernel ``K = c c^T + (1 - c)(1 - c)^T`` (agreeing units, over all token pairs), summed over
  calls. (The notebook sums ``K``; NASWOT takes ``log det K``.) ``sum K`` is computed in closed
  form from the per-unit counts ``n`` of active tokens: ``sum_u n_u^2 + (T - n_u)^2``.
* ``jacob_cov`` (Mellor et al. 2020, the foresight measure): the per-sequence gradient of the
  summed output logits (``_lm.output_logits``) with respect to the input embedding, flattened;
  score ``-sum(log(l + k) + 1/(l + k))`` over the eigenvalues ``l`` of the correlation matrix
  between the batch's sequences, ``k = 1e-5``. Higher = less correlated Jacobians = better.
* ``jacobian_score`` (NAS-Bench-BERT's adaptation): the same score, but of the gradient of the
  objective with respect to the per-position input (the position-embedding rows for flexibert
  and GPT-2, the token-embedding output summed over the batch for Transformer-XL, which has
  no position table), correlated across hidden units. It needs more positions than hidden
  units to be informative, so it reads the longest sequence the model accepts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainfree.proxies import ProxyContext, measure
from trainfree.proxies._lm import (
    batch_first,
    covariance_score,
    ffn_sign_modules,
    model_inputs,
    objective,
    output_logits,
    recorded_forward,
    token_batch,
)
from trainfree.spaces.base import seeded

JACOB_BATCH_SIZE = 16
JACOB_SEQ_LEN = 32
JACOBIAN_SCORE_BATCH_SIZE = 2


@measure("activation_distance", needs_data=True)
def activation_distance(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum of the NASWOT kernel of the FFN activation codes of the first sequence (Serianni & Kalita)."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx)
    outputs = recorded_forward(model, ffn_sign_modules(model), ids, ctx.seed)
    total = 0.0
    for out in outputs:
        codes = (batch_first(model, out)[0] > 0).double()  # [T, F], first sequence
        active = codes.sum(0)  # [F] tokens on which each unit fires
        t = codes.shape[0]
        total += float((active**2 + (t - active) ** 2).sum())
    return total


def _embedding_output_leaf(model: nn.Module, store: list[torch.Tensor]):
    """A forward hook making the embedding's output a leaf that receives its gradient."""

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        leaf = out.detach().requires_grad_(True)
        store.append(leaf)
        return leaf

    return model.embedding.register_forward_hook(hook)


@measure("jacob_cov", needs_data=True, needs_grad=True)
def jacob_cov(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Jacobian covariance: decorrelation of the per-sequence input Jacobians (Mellor et al. 2020)."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx, batch_size=JACOB_BATCH_SIZE, seq_len=JACOB_SEQ_LEN)
    leaves: list[torch.Tensor] = []
    handle = _embedding_output_leaf(model, leaves)
    try:
        with seeded(ctx.seed):
            hidden = model(model_inputs(model, ids))  # [B, T, d]
        (grad,) = torch.autograd.grad(output_logits(model, hidden).sum(), leaves)
    finally:
        handle.remove()
    jac = batch_first(model, grad).reshape(ids.shape[0], -1)  # [B, T * d]
    return covariance_score(jac.numpy())


@measure("jacobian_score", needs_data=True, needs_grad=True)
def jacobian_score(space: Any, config: Any, ctx: ProxyContext) -> float:
    """NAS-Bench-BERT jacobian score: covariance of the per-position input gradient over hidden units."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx, batch_size=JACOBIAN_SCORE_BATCH_SIZE, seq_len=None)
    t = ids.shape[1] - 1
    emb = model.embedding
    table = getattr(emb, "position_embeddings", None) or getattr(emb, "wpe", None)
    if table is not None:
        (grad,) = _grads_of(model, ids, ctx, [table.weight])
        jac = grad[:t]  # [T, d]: the rows of the positions used
    else:
        leaves: list[torch.Tensor] = []
        handle = _embedding_output_leaf(model, leaves)
        try:
            (grad,) = _grads_of(model, ids, ctx, leaves)
        finally:
            handle.remove()
        jac = batch_first(model, grad).sum(0)  # [T, d]
    return covariance_score(jac.t().numpy())  # rows = hidden units, as the notebook


def _grads_of(model: nn.Module, ids: torch.Tensor, ctx: ProxyContext, inputs: list[torch.Tensor]):
    """Gradients of the objective with respect to ``inputs`` (leaves created lazily by
    hooks are appended to the list during the forward pass, hence the late read)."""
    with seeded(ctx.seed):
        loss = objective(model, ids, ctx)
    return torch.autograd.grad(loss, list(inputs))
