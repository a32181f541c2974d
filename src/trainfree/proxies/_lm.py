"""What the data-dependent baseline proxies share: the input batch, the loss, and where to look.

Input. A seeded batch of uniformly random token ids (``DEFAULT_BATCH_SIZE`` sequences of
``DEFAULT_SEQ_LEN`` tokens unless a proxy or the caller says otherwise; ``ctx.batch_size``,
``ctx.seq_len`` and ``ctx.options["data_seed"]`` override). Random tokens instead of text keep
the proxies free of any corpus; docs/baselines.md measures what that costs against the
published values, which were computed on real text.

Loss ("objective"). One per space, so that every gradient proxy of a space sees the same
signal:

* ``flexibert``: masked-LM. 15% of the positions (seeded) are replaced by ``[MASK]`` (id 103
  in ELECTRA's vocabulary) and predicted through a *tied, parameter-free* decoder: the hidden
  state is mapped back to the embedding width with the transpose of the embedding projection
  and scored against the word-embedding table. The benchmark's encoders have no head of their
  own, so the decoder adds no parameter and no randomness.
* ``gpt2`` / ``transxl``: causal LM, mean next-token negative log-likelihood through the model's
  own tied adaptive softmax (``model.lm_loss``).

``ctx.options["objective"] = "sum"`` switches to the NAS-Bench-BERT notebook's signal instead:
the backward pass of ``sum(last hidden state)`` ("gradient with respect to ones").

Where to look. Models follow the space convention (``model.blocks[i].attn`` / ``.ffn``); the
few space-specific names (the attention output projection, the FFN nonlinearity, where the
attention probabilities pass, time-major Transformer-XL tensors) are resolved here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.proxies import ProxyContext
from trainfree.spaces.base import seeded

DEFAULT_BATCH_SIZE = 4
DEFAULT_SEQ_LEN = 128
MLM_MASK_RATE = 0.15
MLM_MASK_ID = 103  # ELECTRA / BERT uncased [MASK]

#: names of the attention sub-modules that are not per-head projections: the output
#: projection (flexibert ``output``, GPT-2 ``c_proj``, Transformer-XL ``o_net``) and ConvBERT's
#: dynamic-kernel predictor (the notebook's ``out_features >= 128`` rule excluded exactly it)
NOT_HEAD_PROJECTIONS = ("output", "c_proj", "o_net", "conv_kernel_layer")


# ------------------------------------------------------------------------------ batch
def is_causal(model: nn.Module) -> bool:
    """GPT-2 and Transformer-XL (they have ``lm_loss``), as opposed to the flexibert encoders."""
    return hasattr(model, "lm_loss")


def is_time_major(model: nn.Module) -> bool:
    """Transformer-XL works on ``[T, B, ...]`` tensors inside."""
    return hasattr(model, "forward_with_mems")


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
def mlm_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Tied decoder of a flexibert encoder: ``hidden [.., H]`` -> logits ``[.., vocab]``."""
    emb = model.embedding
    if emb.project is not None:
        hidden = hidden @ emb.project.weight  # [.., H] @ [H, E] -> [.., E]
    return hidden @ emb.word_embeddings.weight.t()


def output_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Un-normalised output logits ``[N, classes]`` of hidden states ``[..., d]``: the adaptive
    softmax's head cluster for LM models (archai's synflow), the tied MLM decoder for encoders.
    Proxies that differentiate "the output" use these: every model here ends with a
    LayerNorm whose outputs sum to a constant, so the sum of the hidden state has no gradient."""
    hidden = hidden.reshape(-1, hidden.shape[-1])
    return model.head.head_logits(hidden) if is_causal(model) else mlm_logits(model, hidden)


def mlm_loss(model: nn.Module, ids: torch.Tensor, seed: int) -> torch.Tensor:
    """Masked-LM cross-entropy on a seeded 15% of the positions (at least one)."""
    gen = torch.Generator().manual_seed(seed + 1)
    masked = torch.rand(ids.shape, generator=gen) < MLM_MASK_RATE
    masked.view(-1)[0] = True
    mask_id = min(MLM_MASK_ID, model.config.vocab_size - 1)
    hidden = model(ids.masked_fill(masked, mask_id))  # [B, T, H]
    return F.cross_entropy(mlm_logits(model, hidden[masked]), ids[masked])


def objective(model: nn.Module, ids: torch.Tensor, ctx: ProxyContext) -> torch.Tensor:
    """The scalar every gradient proxy differentiates (see the module docstring)."""
    if ctx.options.get("objective", "lm") == "sum":
        return model(model_inputs(model, ids)).sum()
    if is_causal(model):
        return model.lm_loss(ids[:, :-1], ids[:, 1:]).mean()
    return mlm_loss(model, model_inputs(model, ids), data_seed(ctx))


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
    """The per-head projections of every token mixer: flexibert ``query``/``key``/``value``/
    ``weight`` (WMA)/``input`` (LT)/``conv_out_layer`` (DSC), GPT-2 ``c_attn``, Transformer-XL
    ``qkv_net``/``r_net``."""
    out = []
    for block in model.blocks:
        for name, m in block.attn.named_modules():
            if isinstance(m, nn.Linear) and name.split(".")[-1] not in NOT_HEAD_PROJECTIONS:
                out.append(m)
    return out


def ffn_sign_modules(model: nn.Module) -> list[nn.Module]:
    """Per layer, a module whose output is positive exactly where the FFN nonlinearity's
    output is: flexibert ``ffn.act`` (GELU, called once per stacked layer), GPT-2 ``ffn.c_fc``
    (gelu(x) > 0 iff x > 0; the GELU is functional), Transformer-XL's ``nn.ReLU``."""
    out: list[nn.Module] = []
    for block in model.blocks:
        ffn = block.ffn
        if hasattr(ffn, "act"):
            out.append(ffn.act)
        elif hasattr(ffn, "c_fc"):
            out.append(ffn.c_fc)
        else:
            out.extend(m for m in ffn.modules() if isinstance(m, nn.ReLU))
    return out


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
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        seen.append((args[0] if what == "input" else output).detach())

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad(), seeded(seed):
            model(model_inputs(model, ids))
    finally:
        for h in handles:
            h.remove()
    return seen


def attention_probabilities(
    model: nn.Module, ids: torch.Tensor, seed: int, with_lt: bool
) -> list[torch.Tensor]:
    """One forward pass (no gradients); every layer's softmax output ``[B, h, T, K]``.

    flexibert: the ``softmax`` module of each mixer; ``with_lt`` also takes the LT layers'
    softmax, which the original computes over the transform output and throws away (the
    notebook's softmax confidence includes it). GPT-2: the input of ``attn.attn_dropout``.
    Transformer-XL: the input of ``attn.dropatt``, ``[T, K, B, h]`` turned into ``[B, h, T, K]``.
    """
    if hasattr(model.blocks[0].attn, "attn_dropout"):
        modules, what = [b.attn.attn_dropout for b in model.blocks], "input"
    elif hasattr(model.blocks[0].attn, "dropatt"):
        modules, what = [b.attn.dropatt for b in model.blocks], "input"
    else:
        modules = [b.attn.softmax for b in model.blocks if with_lt or not hasattr(b.attn, "transform")]
        what = "output"
    probs = recorded_forward(model, modules, ids, seed, what)
    if is_time_major(model):
        probs = [p.permute(2, 3, 0, 1) for p in probs]
    return probs


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
