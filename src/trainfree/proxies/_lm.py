"""What the data-dependent baseline proxies share: the input batch, the loss, and where to look.

Input. A seeded batch of uniformly random token ids (``DEFAULT_BATCH_SIZE`` sequences of
``DEFAULT_SEQ_LEN`` tokens unless a proxy or the caller says otherwise; ``ctx.batch_size``,
``ctx.seq_len`` and ``ctx.options["data_seed"]`` override). Random tokens instead of text keep
the proxies free of any corpus; docs/baselines.md measures what that costs against the
published values, which were computed on real text.

Loss ("objective"). The model's own, so that every gradient proxy of a space sees the same
signal: ``model.mean_lm_loss(ids, seed)`` of the :class:`~trainfree.spaces.protocol.ProxyModel`
protocol. For ``flexibert`` it is a masked-LM loss (15% of the positions, seeded, replaced by
``[MASK]`` and predicted through a tied, parameter-free decoder); for ``gpt2`` / ``transxl`` the
mean next-token negative log-likelihood through the model's own tied adaptive softmax.
``ctx.options["objective"] = "sum"`` switches to the NAS-Bench-BERT notebook's signal instead:
the backward pass of ``sum(last hidden state)`` ("gradient with respect to ones").

Where to look. Models follow the space convention (``model.blocks[i].attn`` / ``.ffn``) and
answer the rest themselves through ``ProxyModel`` (the attention probabilities, the FFN
nonlinearity, the per-head projections, whether their tensors are time-major): no function
here knows a particular space.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from trainfree.proxies import ProxyContext
from trainfree.spaces.base import seeded
from trainfree.spaces.protocol import ProxyModel, record_forward

DEFAULT_BATCH_SIZE = 4
DEFAULT_SEQ_LEN = 128


def proxy_model(model: nn.Module) -> ProxyModel:
    """``model``, checked to implement :class:`ProxyModel` (a clear error for any other module)."""
    if not isinstance(model, ProxyModel):
        raise TypeError(
            f"{type(model).__name__} does not implement trainfree.spaces.protocol.ProxyModel "
            "(data-dependent proxies need a model built by a trainfree space)"
        )
    return model


# ------------------------------------------------------------------------------ batch
def is_causal(model: nn.Module) -> bool:
    """GPT-2 and Transformer-XL, as opposed to the flexibert encoders."""
    return proxy_model(model).causal


def is_time_major(model: nn.Module) -> bool:
    """Transformer-XL works on ``[T, B, ...]`` tensors inside."""
    return proxy_model(model).time_major


def batch_first(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An activation recorded inside ``model`` as ``[B, T, ...]``."""
    return x.transpose(0, 1) if is_time_major(model) else x


def token_batch(
    space: Any,
    config: Any,
    ctx: ProxyContext,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seq_len: int | None = DEFAULT_SEQ_LEN,
) -> torch.Tensor:
    """Seeded random token ids ``[B, T + 1]``: every model reads the first ``T``, causal ones
    predict the last ``T``. ``seq_len=None`` means the space's maximum; it is always clipped
    to it."""
    b = ctx.batch_size or batch_size
    t = ctx.seq_len or seq_len or space.max_seq_len(config)
    t = min(t, space.max_seq_len(config))
    gen = torch.Generator().manual_seed(data_seed(ctx))
    return torch.randint(0, space.vocab_size(config), (b, t + 1), generator=gen)


def data_seed(ctx: ProxyContext) -> int:
    """The batch's seed: ``ctx.options["data_seed"]``, else the architecture seed."""
    return int(ctx.options.get("data_seed", ctx.seed))


def model_inputs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """What the model reads: all tokens but the last (the last target of a causal model)."""
    return ids[:, :-1]


# ------------------------------------------------------------------------------ losses
def output_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Un-normalised output logits ``[N, classes]`` of hidden states ``[..., d]``: the adaptive
    softmax's head cluster for LM models (archai's synflow), the tied MLM decoder for encoders.
    Proxies that differentiate "the output" use these: every model here ends with a
    LayerNorm whose outputs sum to a constant, so the sum of the hidden state has no gradient."""
    return proxy_model(model).output_logits(hidden)


def objective(model: nn.Module, ids: torch.Tensor, ctx: ProxyContext) -> torch.Tensor:
    """The scalar every gradient proxy differentiates (see the module docstring)."""
    if ctx.options.get("objective", "lm") == "sum":
        return model(model_inputs(model, ids)).sum()
    return proxy_model(model).mean_lm_loss(ids, data_seed(ctx))


@contextlib.contextmanager
def backward_pass(model: nn.Module, ids: torch.Tensor, ctx: ProxyContext) -> Iterator[None]:
    """Fill every ``.grad`` with the objective's gradient for the body of the ``with``, then
    drop them all: the model (shared by all proxies of an architecture) leaves as it came.
    Dropout stays as built (training mode, as the reference runs) and is seeded."""
    model.zero_grad(set_to_none=True)
    try:
        with seeded(ctx.seed):
            objective(model, ids, ctx).backward()
        yield
    finally:
        model.zero_grad(set_to_none=True)


# ------------------------------------------------------------------------------ modules
def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """Every ``nn.Linear`` under ``module`` (the foresight / archai measures' layer set)."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def attention_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for block in model.blocks for m in linear_layers(block.attn)]


def ffn_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for block in model.blocks for m in linear_layers(block.ffn)]


def head_projections(model: nn.Module) -> list[nn.Linear]:
    """The per-head projections of every token mixer (``ProxyModel.head_projections``)."""
    return proxy_model(model).head_projections()


def ffn_sign_modules(model: nn.Module) -> list[nn.Module]:
    """Per layer, a module whose output is positive exactly where the FFN nonlinearity's
    output is (``ProxyModel.ffn_activations``)."""
    return proxy_model(model).ffn_activations()


def ffn_output_linears(model: nn.Module) -> list[nn.Linear]:
    """The last Linear of each FFN (its input is the FFN's inner representation)."""
    return [linear_layers(block.ffn)[-1] for block in model.blocks]


def saliency(layers: list[nn.Linear]) -> float:
    """``sum |W * W.grad|`` over the layers that received a gradient (SNIP's statistic)."""
    with torch.no_grad():
        return float(sum((m.weight * m.weight.grad).abs().sum() for m in layers if m.weight.grad is not None))


# ------------------------------------------------------------------------------ hooks
def recorded_forward(
    model: nn.Module, modules: list[nn.Module], ids: torch.Tensor, seed: int, what: str = "output"
) -> list[torch.Tensor]:
    """One forward pass of ``ids`` (no gradients, dropout seeded); the outputs (or first
    inputs, ``what="input"``) of ``modules`` in call order. The hooks are removed afterwards."""

    def run() -> None:
        with torch.no_grad(), seeded(seed):
            model(model_inputs(model, ids))

    return record_forward(modules, run, what)


def attention_probabilities(
    model: nn.Module, ids: torch.Tensor, seed: int, with_lt: bool
) -> list[torch.Tensor]:
    """One forward pass (no gradients, dropout seeded); every layer's attention probabilities
    ``[B, h, T, K]``. ``with_lt`` also takes flexibert's LT layers' softmax, which the original
    computes over the transform output and throws away (the notebook's softmax confidence
    includes it)."""
    with torch.no_grad(), seeded(seed):
        return proxy_model(model).attention_probabilities(model_inputs(model, ids), with_lt)


def covariance_score(rows: torch.Tensor | Any, k: float = 1e-5) -> float:
    """Mellor et al.'s Jacobian-covariance score of a matrix whose rows are the samples:
    ``-sum(log(l + k) + 1 / (l + k))`` over the eigenvalues ``l`` of the rows' correlation
    matrix. Rows with zero variance (no gradient at all) get zero correlation with the others
    instead of NaN."""
    import numpy as np

    x = np.asarray(rows, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1)
    x = x / np.where(norms > 0, norms, 1.0)[:, None]
    corr = x @ x.T
    np.fill_diagonal(corr, 1.0)
    eig = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(eig + k) + 1.0 / (eig + k)))
