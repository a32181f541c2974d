"""LTS heterogeneous GPT-2 ("HfGPT2Flex" in archai), as trained by LiteTransformerSearch.

Hugging Face GPT-2 blocks (pre-LayerNorm, causal self-attention, ``gelu_new`` MLP) whose
head count and MLP width vary per layer, with an adaptive input embedding and a tied
projected adaptive log-softmax instead of GPT-2's single embedding matrix (see
``specs/gpt2.md`` and ``specs/adaptive.md``).

Published parameter buckets (``params_summary.yaml``), which :meth:`GPT2Space.param_counts`
reproduces for all 322 GPT-2 benchmark models:

- ``AdaEmb`` (our ``embedding``) = adaptive embedding + the learned position table
  ``tgt_len x d_model``;
- ``Attn`` (``attention``) = ``L (4 d^2 + 4 d)`` (the width is always ``d``, so ``n_head``
  does not change the count);
- ``FFN`` (``ffn``) = ``sum_i (2 d f_i + f_i + d)``;
- ``nonembedding`` (``decoder``) = ``Attn + FFN`` + all LayerNorms ``(4 L + 2) d``;
- ``total`` = ``AdaEmb + nonembedding + softmax_own`` (untied softmax parameters, our ``head``).

The HF ``Conv1D`` layers are written as ``nn.Linear`` (weight ``[out, in]`` instead of
``[in, out]``): same parameter count, same i.i.d. initialisation, same function.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.errors import ConfigError
from trainfree.spaces import register_space
from trainfree.spaces.base import ParamCounts
from trainfree.spaces.lts import (
    ARCH_VALUES,
    AdaptiveEmbedding,
    LTSConfig,
    LTSSpace,
    ProjectedAdaptiveLogSoftmax,
    adaptive_embedding_flops,
    adaptive_embedding_params,
    adaptive_softmax_flops,
    softmax_own_params,
)


class GPT2Embedding(nn.Module):
    """Token embedding (adaptive, scaled by ``sqrt(d)``) plus learned absolute positions.

    One module so that ``model.embedding`` holds exactly the published ``AdaEmb`` bucket.
    """

    def __init__(self, config: LTSConfig) -> None:
        super().__init__()
        self.wte = AdaptiveEmbedding(config)
        self.wpe = nn.Embedding(config.tgt_len, config.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids [B, T]`` -> ``[B, T, d]`` (embedding dropout is 0 in LTS)."""
        pos = torch.arange(input_ids.size(1), device=input_ids.device)  # [T]
        return self.wte(input_ids) + self.wpe(pos)


class CausalSelfAttention(nn.Module):
    """GPT-2 multi-head causal self-attention with ``n_head`` heads of size ``d / n_head``.

    The attention probabilities ``[B, h, T, T]`` are the input of ``attn_dropout``: a forward
    hook there reads them without changing this code.
    """

    def __init__(self, d_model: int, n_head: int, dropout: float, dropatt: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.head_dim = d_model // n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)  # q, k, v for all heads
        self.c_proj = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropatt)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)  # each [B, T, d]
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # [B, h, T, e]
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # [B, h, T, T]
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(future, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, d)  # [B, T, d]
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """``c_proj(gelu_new(c_fc(x)))`` with this layer's own inner width."""

    def __init__(self, d_model: int, d_inner: int, dropout: float) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d_model, d_inner)
        self.c_proj = nn.Linear(d_inner, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.c_fc(x), approximate="tanh")  # [B, T, f]; GPT-2's gelu_new
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))``, then ``x + ffn(ln_2(x))``."""

    def __init__(self, config: LTSConfig, layer: int) -> None:
        super().__init__()
        d = config.d_model
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = CausalSelfAttention(d, config.n_head[layer], config.dropout, config.dropatt)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.ffn = MLP(d, config.d_inner[layer], config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.ffn(self.ln_2(x))


class GPT2LM(nn.Module):
    """The LTS GPT-2 language model: ``embedding``, ``blocks``, ``ln_f``, ``head``."""

    def __init__(self, config: LTSConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = GPT2Embedding(config)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, eps=1e-5)
        self.head = ProjectedAdaptiveLogSoftmax(config, self.embedding.wte)

    def tie_weights(self) -> None:
        """Make the softmax tables (and tied projections) the embedding's tensors."""
        self.head.tie_to(self.embedding.wte)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Hugging Face GPT-2 ``_init_weights`` with ``initializer_range = weight_init_std``:
        linear weights and embeddings N(0, std), biases 0, LayerNorm 1/0, then every
        ``c_proj`` weight (attention and MLP) redrawn N(0, std / sqrt(2 L)); adaptive
        projections N(0, proj_init_std), cluster weight N(0, std). GPT-2 always draws from
        a normal (``weight_init_type`` is not read)."""
        std = self.config.weight_init_std

        def normal(t: torch.Tensor) -> None:
            nn.init.normal_(t, 0.0, std)

        for module in self.modules():
            if isinstance(module, nn.Linear):
                normal(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        normal(self.embedding.wpe.weight)
        self.embedding.wte.reset_parameters(normal)
        self.head.reset_parameters(normal)
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.ffn.c_proj):
                nn.init.normal_(proj.weight, 0.0, std / math.sqrt(2 * self.config.n_layer))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids [B, T]`` (T <= tgt_len) -> final hidden states ``[B, T, d]`` (after ``ln_f``)."""
        if input_ids.size(1) > self.config.tgt_len:
            raise ValueError(
                f"sequence length {input_ids.size(1)} exceeds tgt_len={self.config.tgt_len} "
                "(the number of learned positions)"
            )
        x = self.embedding(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def lm_loss(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood ``[B, T]``; ``labels`` are already the next
        tokens (no shift here, as in archai's flex head)."""
        hidden = self(input_ids)
        return self.head(hidden.reshape(-1, hidden.size(-1)), labels.reshape(-1)).view(labels.shape)

    def log_probs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every next token, ``[B, T, n_token]``."""
        hidden = self(input_ids)
        return self.head.log_prob(hidden.reshape(-1, hidden.size(-1))).view(*input_ids.shape, -1)


@register_space("gpt2")
class GPT2Space(LTSSpace):
    """LiteTransformerSearch's heterogeneous GPT-2 (per-layer heads and MLP widths).

    Default settings: the wt103 vocabulary (50264 tokens, cleaned cutoffs
    ``[19997, 39997, 50264]``), 192 positions, only the head projection untied.
    """

    dialect = "gpt2"
    model_class = GPT2LM
    default_values: ClassVar[dict[str, tuple[Any, ...]]] = {
        **ARCH_VALUES,
        "n_token": (50264,),
        "cutoffs": ((19997, 39997, 50264),),
        "tgt_len": (192,),
        "tie_projs": ("untie_head",),
    }

    def check_config(self, config: LTSConfig, where: str | None = None) -> None:
        """GPT-2 heads always split ``d_model``: ``d_head[i] = d_model / n_head[i]``; the
        memory fields are unused and must keep their neutral values."""
        for i, (h, e) in enumerate(zip(config.n_head, config.d_head, strict=True)):
            if config.d_model % h:
                raise ConfigError(f"n_head[{i}]", h, f"a divisor of d_model={config.d_model}", where)
            if e != config.d_model // h:
                raise ConfigError(
                    f"d_head[{i}]", e, f"d_model // n_head[{i}] = {config.d_model // h} (GPT-2)", where
                )
        if config.mem_len != 0:
            raise ConfigError("mem_len", config.mem_len, "0 (GPT-2 has no memory)", where)
        if config.clamp_len != -1:
            raise ConfigError("clamp_len", config.clamp_len, "-1 (GPT-2 has no relative positions)", where)

    def param_counts(self, config: LTSConfig) -> ParamCounts:
        """Analytic counts; ``embedding``/``attention``/``ffn``/``decoder``/``total`` are the
        published ``AdaEmb``/``Attn``/``FFN``/``nonembedding``/``total``; ``norm`` = ln_1,
        ln_2 and ln_f; ``head`` = the softmax's own parameters; ``other`` = 0."""
        d, L = config.d_model, config.n_layer
        embedding = adaptive_embedding_params(config) + config.tgt_len * d
        attention = L * (4 * d * d + 4 * d)
        ffn = sum(2 * d * f + f + d for f in config.d_inner)
        norm = (2 * L + 1) * 2 * d
        head = softmax_own_params(config)
        return ParamCounts(
            embedding=embedding,
            attention=attention,
            ffn=ffn,
            norm=norm,
            head=head,
            other=0,
            decoder=attention + ffn + norm,
            total=embedding + attention + ffn + norm + head,
        )

    def flops(self, config: LTSConfig, seq_len: int) -> int:
        """Forward FLOPs of one sequence of ``seq_len`` tokens giving full log-probabilities.

        2 x multiply-accumulates of every matrix product: adaptive input projections (each
        token counted in the head cluster), per layer ``c_attn`` (``3 T d^2``), ``Q K^T`` and
        ``att V`` (``T^2 d`` each, the full square: the causal mask does not skip work),
        ``c_proj`` (``T d^2``), the MLP (``2 T d f_i``), and the adaptive softmax over the
        whole vocabulary (every cluster's projection and logits, for every token).
        Element-wise work (LayerNorm, softmax, GELU, biases) is ignored.
        """
        T, d = seq_len, config.d_model
        macs = sum(4 * T * d * d + 2 * T * T * d + 2 * T * d * f for f in config.d_inner)
        return 2 * macs + adaptive_embedding_flops(config, T) + adaptive_softmax_flops(config, T)
