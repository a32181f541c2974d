"""Weight-gradient proxies: pruning-at-initialisation saliencies summed over a network.

The foresight measures (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021),
as the LiteTransformerSearch / archai / LPZero fork runs them on language models: every
``nn.Linear`` of the model (attention, feed-forward, flexibert's embedding projection; tables
and the adaptive softmax are parameters, not Linear layers, and are left out as there):

* ``grad_norm`` = sum of the layers' ``||dL/dW||_F``;
* ``snip`` = ``sum |W * dL/dW|`` (the gradient of a multiplicative mask at 1);
* ``grasp`` = ``sum -W * (H g)``, ``H g`` the Hessian-gradient product (foresight's sign:
  its authors found the raw GraSP score anti-correlated with accuracy and negated it);
* ``fisher`` = per output channel ``0.5 * mean_tokens((a * dL/da)^2)`` of each layer's
  activation ``a``, summed with each channel counted once per weight (fan-in) it owns;
* ``synflow`` = ``sum |W * dR/dW|`` in a copy of the network with ``|W|`` everywhere, in float64,
  fed with an all-ones token embedding, ``R`` = the sum of the output logits (LM models: the
  adaptive softmax's head-cluster logits, as archai; flexibert: the tied MLM decoder's). Data-
  free and dropout-free (evaluated in eval mode): it depends on the architecture only;
* ``logsynflow`` = the same pass with ``sum |W * log(1 + |dR/dW|)|`` (Cavagnero et al.,
  FreeREA 2022), which tames synflow's growth with depth.

The NAS-Bench-BERT measures (Serianni & Kalita, ACL 2023), on the same backward pass:

* ``synaptic_diversity`` = ``sum ||W||_* ||dL/dW||_*`` (nuclear norms) over the Linear layers
  of each token mixer (attention sub-layer, output dense included);
* ``synaptic_saliency`` = ``sum |W * dL/dW|`` over the Linear layers of each feed-forward stack.

All of them are "higher = better" as published. The loss and the batch are ``proxies._lm``'s
(masked LM for flexibert, causal LM for GPT-2 / Transformer-XL).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from trainfree.proxies import ProxyContext, measure
from trainfree.proxies._lm import (
    attention_linears,
    backward_pass,
    ffn_linears,
    linear_layers,
    model_inputs,
    objective,
    output_logits,
    saliency,
    token_batch,
)
from trainfree.spaces.base import seeded


# ------------------------------------------------------------------------ foresight
@measure("grad_norm", needs_data=True, needs_grad=True)
def grad_norm(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum of the Frobenius norms of the Linear layers' loss gradients (foresight)."""
    model = ctx.model(space, config)
    with backward_pass(model, token_batch(space, config, ctx), ctx):
        return float(sum(m.weight.grad.norm() for m in linear_layers(model) if m.weight.grad is not None))


@measure("snip", needs_data=True, needs_grad=True)
def snip(space: Any, config: Any, ctx: ProxyContext) -> float:
    """SNIP: sum of |W * dL/dW| over every Linear layer (Lee et al. 2019, foresight)."""
    model = ctx.model(space, config)
    with backward_pass(model, token_batch(space, config, ctx), ctx):
        return saliency(linear_layers(model))


@measure("grasp", needs_data=True, needs_grad=True)
def grasp(space: Any, config: Any, ctx: ProxyContext) -> float:
    """GraSP: sum of -W * Hg over every Linear layer (Wang et al. 2020, foresight's sign)."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx)
    weights = [m.weight for m in linear_layers(model)]
    with seeded(ctx.seed):  # the same dropout masks in both passes
        g = torch.autograd.grad(objective(model, ids, ctx), weights, allow_unused=True)
    with seeded(ctx.seed):
        g_graph = torch.autograd.grad(
            objective(model, ids, ctx), weights, create_graph=True, allow_unused=True
        )
    z = sum(
        (a.detach() * b).sum() for a, b in zip(g, g_graph, strict=True) if a is not None and b is not None
    )
    hg = torch.autograd.grad(z, weights, allow_unused=True)  # Hessian times g
    return float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg, strict=True) if h is not None))


@measure("fisher", needs_data=True, needs_grad=True)
def fisher(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Fisher: per-channel 0.5 * mean((activation * its gradient)^2), per weight (Theis et al. 2018)."""
    model = ctx.model(space, config)
    total = torch.zeros((), dtype=torch.float64)

    def hook(module: nn.Linear, args: tuple, out: torch.Tensor) -> None:
        act = out.detach().reshape(-1, out.shape[-1])  # [tokens, channels]

        def on_grad(grad: torch.Tensor) -> None:
            nonlocal total
            per_channel = 0.5 * (act * grad.reshape(-1, grad.shape[-1])).pow(2).mean(0)  # [channels]
            total += per_channel.sum().double() * module.in_features  # each weight of the channel

        if out.requires_grad:
            out.register_hook(on_grad)

    handles = [m.register_forward_hook(hook) for m in linear_layers(model)]
    try:
        with backward_pass(model, token_batch(space, config, ctx), ctx):
            pass
    finally:
        for h in handles:
            h.remove()
    return float(total)


@contextlib.contextmanager
def _ones_embedding(model: nn.Module) -> Iterator[None]:
    """Replace the token embedding's output by ones (positions stay, as in archai's synflow;
    Transformer-XL's sinusoidal positions become ones too, as there)."""
    emb = model.embedding
    if hasattr(emb, "wte"):  # GPT-2: adaptive token embedding, then + learned positions
        targets = [emb.wte]
    elif hasattr(emb, "word_embeddings"):  # flexibert: word table, then + positions, types, LayerNorm
        targets = [emb.word_embeddings]
    else:  # Transformer-XL: the adaptive embedding is the whole input
        targets = [emb]
    if hasattr(model, "pos_emb"):
        targets.append(model.pos_emb)
    handles = [t.register_forward_hook(lambda m, a, out: torch.ones_like(out)) for t in targets]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _synflow_pairs(space: Any, config: Any, ctx: ProxyContext) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(|W|, dR/d|W|)`` of every Linear layer of a float64 copy with all parameters made
    non-negative (the shared model is untouched)."""
    net = copy.deepcopy(ctx.model(space, config)).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ids = token_batch(space, config, ctx)
    with _ones_embedding(net):
        hidden = net(model_inputs(net, ids))  # [B, T, d]
        output_logits(net, hidden).sum().backward()
    return [(m.weight.detach(), m.weight.grad) for m in linear_layers(net) if m.weight.grad is not None]


@measure("synflow", needs_data=False, needs_grad=True)
def synflow(space: Any, config: Any, ctx: ProxyContext) -> float:
    """SynFlow: sum |W * dR/dW| of the all-positive float64 network on all-ones input (Tanaka et al. 2020)."""
    return float(sum((w * g).abs().sum() for w, g in _synflow_pairs(space, config, ctx)))


@measure("logsynflow", needs_data=False, needs_grad=True)
def logsynflow(space: Any, config: Any, ctx: ProxyContext) -> float:
    """LogSynflow: synflow with log(1 + |gradient|) per weight (FreeREA, Cavagnero et al. 2022)."""
    return float(sum((w * torch.log1p(g.abs())).sum() for w, g in _synflow_pairs(space, config, ctx)))


# ------------------------------------------------------------------- NAS-Bench-BERT
@measure("synaptic_diversity", needs_data=True, needs_grad=True)
def synaptic_diversity(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum of ||W||_* ||dL/dW||_* over the attention sub-layers' Linear layers (Serianni & Kalita 2023)."""
    model = ctx.model(space, config)
    with backward_pass(model, token_batch(space, config, ctx), ctx):
        return float(
            sum(
                torch.linalg.matrix_norm(m.weight.detach(), "nuc")
                * torch.linalg.matrix_norm(m.weight.grad, "nuc")
                for m in attention_linears(model)
                if m.weight.grad is not None
            )
        )


@measure("synaptic_saliency", needs_data=True, needs_grad=True)
def synapticsaliency(space: Any, config: Any, ctx: ProxyContext) -> float:
    """Sum of |W * dL/dW| over the feed-forward sub-layers' Linear layers (Serianni & Kalita 2023)."""
    model = ctx.model(space, config)
    with backward_pass(model, token_batch(space, config, ctx), ctx):
        return saliency(ffn_linears(model))
