"""The LTS heterogeneous GPT-2 ("HfGPT2Flex" in archai) as PyTorch modules.

Hugging Face GPT-2 blocks (pre-LayerNorm, causal self-attention, ``gelu_new`` MLP) whose
head count and MLP width vary per layer, with an adaptive input embedding and a tied
projected adaptive log-softmax (``lts_model.py``) instead of GPT-2's single embedding matrix.
The HF ``Conv1D`` layers are written as ``nn.Linear`` (weight ``[out, in]`` instead of
``[in, out]``): same parameter count, same i.i.d. initialisation, same function.
Shapes: ``B`` batch, ``T`` tokens, ``d`` model width, ``h`` heads of size ``e = d / h``,
``f`` this layer's MLP width.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.spaces.lts_config import LTSConfig
from trainfree.spaces.lts_model import AdaptiveEmbedding, AdaptiveSoftmaxLM, ProjectedAdaptiveLogSoftmax
from trainfree.spaces.protocol import record_forward


class GPT2Embedding(nn.Module):
    """Token embedding (adaptive, scaled by ``sqrt(d)``) plus learned absolute positions.

    One module so that ``model.embedding`` holds exactly the published ``AdaEmb`` bucket.
    """

    def __init__(self, config: LTSConfig) -> None:
        super().__init__()
        self.wte = AdaptiveEmbedding(config)
        self.wpe = nn.Embedding(config.tgt_len, config.d_model)

    def forward(self, input_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``input_ids [B, T]`` at positions ``start .. start + T - 1`` -> ``[B, T, d]``
        (embedding dropout is 0 in LTS)."""
        pos = torch.arange(start, start + input_ids.size(1), device=input_ids.device)  # [T]
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

    def forward(self, x: torch.Tensor, cache: Any = None, layer: int = 0) -> torch.Tensor:
        """``x [B, T, d]``; with a ``cache`` (:class:`KVCache`, or transformers'
        ``DynamicCache``: ``update(k, v, layer)`` returns all keys and values so far), the
        queries attend to the cached keys too (``K`` of them, the ``T`` new ones last)."""
        B, T, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)  # each [B, T, d]
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # [B, h, T, e]
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            k, v = cache.update(k, v, layer)  # [B, h, K, e]
        K = k.size(2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # [B, h, T, K]
        future = torch.ones(T, K, dtype=torch.bool, device=x.device).triu(K - T + 1)
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

    def forward(self, x: torch.Tensor, cache: Any = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.ffn(self.ln_2(x))


class KVCache:
    """Keys and values of every layer, ``[B, h_i, K, e_i]`` (heads differ per layer); the
    ``update`` / ``get_seq_length`` / ``crop`` of transformers' ``DynamicCache``, which an
    exported model uses instead."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def get_seq_length(self, layer: int = 0) -> int:
        return self.keys[layer].size(2) if len(self.keys) > layer else 0

    def update(self, k: torch.Tensor, v: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]

    def crop(self, length: int) -> None:
        """Keep the first ``length`` tokens."""
        self.keys = [k[:, :, :length] for k in self.keys]
        self.values = [v[:, :, :length] for v in self.values]


class GPT2LM(AdaptiveSoftmaxLM):
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

    def forward(self, input_ids: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """``input_ids [B, T]`` -> final hidden states ``[B, T, d]`` (after ``ln_f``). With a
        ``cache`` holding earlier tokens, ``input_ids`` follow them (and are added to it);
        all tokens together must fit the ``tgt_len`` learned positions."""
        start = cache.get_seq_length() if cache is not None else 0
        if start + input_ids.size(1) > self.config.tgt_len:
            raise ValueError(
                f"sequence length {start + input_ids.size(1)} exceeds tgt_len={self.config.tgt_len} "
                "(the number of learned positions)"
            )
        x = self.embedding(input_ids, start)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
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

    # ------------------------------------------------- what proxies ask (ProxyModel)
    def token_embedding(self) -> nn.Module:
        return self.embedding.wte

    def position_table(self) -> nn.Embedding:
        return self.embedding.wpe

    def attention_probabilities(
        self, input_ids: torch.Tensor, include_transforms: bool = False
    ) -> list[torch.Tensor]:
        """The input of each layer's ``attn.attn_dropout``, ``[B, h, T, T]``."""
        modules = [b.attn.attn_dropout for b in self.blocks]
        return record_forward(modules, lambda: self(input_ids), what="input")

    def head_projections(self) -> list[nn.Linear]:
        """``c_attn`` of each layer (queries, keys and values of every head)."""
        return [b.attn.c_attn for b in self.blocks]

    def ffn_activations(self) -> list[nn.Module]:
        """``ffn.c_fc`` of each layer: the GELU is functional, and gelu(x) > 0 iff x > 0."""
        return [b.ffn.c_fc for b in self.blocks]
