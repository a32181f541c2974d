"""The LTS heterogeneous Transformer-XL (NVIDIA/archai ``MemTransformerLM``, flex variant)
as PyTorch modules.

Post-LayerNorm layers with relative positional attention ("RelPartialLearnable", Dai et al.
2019), per-layer head counts and feed-forward widths, segment-level memory, an adaptive
input embedding and a tied projected adaptive log-softmax (``lts_model.py``). Inside, every
tensor is time-major as in the original: ``T`` segment length, ``B`` batch, ``m`` memory
length, ``K = m + T`` keys, ``d`` model width, ``h`` heads of size ``e`` (``H = h e``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.spaces.lts_config import LTSConfig
from trainfree.spaces.lts_model import (
    AdaptiveEmbedding,
    AdaptiveSoftmaxLM,
    ProjectedAdaptiveLogSoftmax,
    init_weight_,
)
from trainfree.spaces.protocol import record_forward


class SinusoidalPositions(nn.Module):
    """Transformer-XL position encodings ``[sin(p w), cos(p w)]`` (concatenated, not
    interleaved), ``w_j = 10000^(-2j/d)``. No parameters and no buffer: computed on the fly."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, pos_seq: torch.Tensor) -> torch.Tensor:
        """``pos_seq [K]`` (float) -> ``[K, d]``."""
        inv_freq = 1.0 / (
            10000 ** (torch.arange(0.0, self.d_model, 2.0, device=pos_seq.device) / self.d_model)
        )
        sinusoid = torch.outer(pos_seq, inv_freq)  # [K, d/2]
        return torch.cat([sinusoid.sin(), sinusoid.cos()], dim=-1)


class RelPartialLearnableAttention(nn.Module):
    """Relative positional multi-head attention with its post-attention LayerNorm.

    Scores are ``(q + u) k^T + relshift((q + v) r^T)`` over the memory and the current
    segment, where ``r = r_net(pos_emb)`` and ``u``/``v`` are the model's per-layer
    ``r_w_bias``/``r_r_bias``. The LayerNorm sits in this module, as in the original, so this
    module's parameters are exactly one layer's share of the published ``Attn`` bucket.
    Attention probabilities ``[T, K, B, h]`` are the input of ``dropatt`` (hook there).
    """

    def __init__(self, d_model: int, n_head: int, d_head: int, dropout: float, dropatt: float) -> None:
        super().__init__()
        self.n_head, self.d_head = n_head, d_head
        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)
        self.drop = nn.Dropout(dropout)
        self.dropatt = nn.Dropout(dropatt)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-5)
        self.scale = 1.0 / d_head**0.5

    @staticmethod
    def rel_shift(x: torch.Tensor) -> torch.Tensor:
        """Standard Transformer-XL shift ``[T, K, ...]``: row ``i`` moves left by ``T - 1 - i``
        so that column ``j`` holds relative distance ``i + m - j`` (pad one zero column on the
        key axis, reshape, drop the first row)."""
        zero_pad = x.new_zeros((x.size(0), 1, *x.size()[2:]))
        padded = torch.cat([zero_pad, x], dim=1).view(x.size(1) + 1, x.size(0), *x.size()[2:])
        return padded[1:].view_as(x)

    def forward(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        r_w_bias: torch.Tensor,
        r_r_bias: torch.Tensor,
        mask: torch.Tensor,
        mem: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x [T, B, d]``, ``pos_emb [K, d]``, biases ``[h, e]``, ``mask [T, K]`` (True =
        hidden), ``mem [m, B, d]`` with ``K = m + T`` -> ``LayerNorm(x + attention) [T, B, d]``."""
        T, B, _ = x.shape
        h, e = self.n_head, self.d_head
        c = x if mem is None or mem.size(0) == 0 else torch.cat([mem, x], dim=0)  # [K, B, d]
        K = c.size(0)
        q, k, v = self.qkv_net(c).chunk(3, dim=-1)  # each [K, B, h*e]
        q = q[-T:].view(T, B, h, e)
        k, v = k.view(K, B, h, e), v.view(K, B, h, e)
        r = self.r_net(pos_emb).view(K, h, e)  # [K, h, e]
        ac = torch.einsum("ibnd,jbnd->ijbn", q + r_w_bias, k)  # content scores [T, K, B, h]
        bd = self.rel_shift(torch.einsum("ibnd,jnd->ijbn", q + r_r_bias, r))  # position scores
        score = (ac + bd) * self.scale
        score = score.masked_fill(mask[:, :, None, None], float("-inf"))
        prob = self.dropatt(F.softmax(score, dim=1))  # over keys
        out = torch.einsum("ijbn,jbnd->ibnd", prob, v).reshape(T, B, h * e)
        out = self.drop(self.o_net(out))  # [T, B, d]
        return self.layer_norm(x + out)


class TransXLBlock(nn.Module):
    """Post-LN layer: ``attn`` (with its LayerNorm), then ``ffn_norm(x + ffn(x))``.

    ``ffn`` is the original ``PositionwiseFF.CoreNet`` (Linear, ReLU, Dropout, Linear,
    Dropout): the published ``FFN`` bucket excludes the feed-forward LayerNorm, so it lives
    on the block as ``ffn_norm``.
    """

    def __init__(self, config: LTSConfig, layer: int) -> None:
        super().__init__()
        d, f = config.d_model, config.d_inner[layer]
        self.attn = RelPartialLearnableAttention(
            d, config.n_head[layer], config.d_head[layer], config.dropout, config.dropatt
        )
        self.ffn = nn.Sequential(
            nn.Linear(d, f),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(f, d),
            nn.Dropout(config.dropout),
        )
        self.ffn_norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x, pos_emb, r_w_bias, r_r_bias, mask, mem=None) -> torch.Tensor:
        x = self.attn(x, pos_emb, r_w_bias, r_r_bias, mask, mem)
        return self.ffn_norm(x + self.ffn(x))


class TransXLLM(AdaptiveSoftmaxLM):
    """The LTS Transformer-XL: ``embedding``, ``blocks``, ``r_w_bias``/``r_r_bias``
    (per-layer ``[h_i, e_i]``, kept on the model as in archai), ``head``.

    The interface is batch-first; inside, everything is time-major ``[T, B, d]`` as in the
    original. Memories are lists with one ``[m, B, d]`` tensor per layer (that layer's past
    inputs, detached).
    """

    time_major = True

    def __init__(self, config: LTSConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = AdaptiveEmbedding(config)
        self.pos_emb = SinusoidalPositions(config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransXLBlock(config, i) for i in range(config.n_layer))
        self.r_w_bias = nn.ParameterList(
            nn.Parameter(torch.empty(h, e)) for h, e in zip(config.n_head, config.d_head, strict=True)
        )
        self.r_r_bias = nn.ParameterList(
            nn.Parameter(torch.empty(h, e)) for h, e in zip(config.n_head, config.d_head, strict=True)
        )
        self.head = ProjectedAdaptiveLogSoftmax(config, self.embedding)

    def tie_weights(self) -> None:
        """Make the softmax tables (and tied projections) the embedding's tensors."""
        self.head.tie_to(self.embedding)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """archai ``weights_init``: linear weights, embedding tables, cluster weight and
        ``r_w_bias``/``r_r_bias`` from ``init_weight`` (N(0, 0.02), or U(-0.1, 0.1) for
        ``uniform``), linear biases 0, adaptive projections N(0, proj_init_std), and
        LayerNorm weight N(1, weight_init_std) (not 1), bias 0."""
        c = self.config

        def init(t: torch.Tensor) -> None:
            init_weight_(t, c)

        for module in self.modules():
            if isinstance(module, nn.Linear):
                init(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.normal_(module.weight, 1.0, c.weight_init_std)
                nn.init.zeros_(module.bias)
        for bias in (*self.r_w_bias, *self.r_r_bias):
            init(bias)
        self.embedding.reset_parameters(init)
        self.head.reset_parameters(init)

    def forward_with_mems(
        self, input_ids: torch.Tensor, mems: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``input_ids [B, T]`` and optional ``mems`` (per layer ``[m, B, d]``) -> hidden
        states ``[B, T, d]`` and the new memories (per layer the last ``mem_len`` inputs of
        ``cat(mem, current)``, detached)."""
        ids = input_ids.t()  # [T, B]
        T = ids.size(0)
        m = 0 if not mems else mems[0].size(0)
        K = m + T
        x = self.drop(self.embedding(ids))  # [T, B, d], already scaled by sqrt(d)
        pos_seq = torch.arange(K - 1, -1, -1.0, device=ids.device)  # distances K-1 .. 0
        if self.config.clamp_len > 0:
            pos_seq = pos_seq.clamp(max=self.config.clamp_len)
        pos_emb = self.drop(self.pos_emb(pos_seq).to(x.dtype))  # [K, d]
        mask = torch.ones(T, K, dtype=torch.bool, device=ids.device).triu(1 + m)  # key j > query i + m
        inputs = []
        for i, block in enumerate(self.blocks):
            inputs.append(x)
            x = block(x, pos_emb, self.r_w_bias[i], self.r_r_bias[i], mask, mems[i] if mems else None)
        x = self.drop(x)
        return x.transpose(0, 1), self._update_mems(inputs, mems, T)

    @torch.no_grad()
    def _update_mems(self, inputs: list[torch.Tensor], mems: list[torch.Tensor] | None, T: int):
        new = []
        for i, h in enumerate(inputs):
            cat = h if not mems else torch.cat([mems[i], h], dim=0)
            new.append(cat[max(0, cat.size(0) - self.config.mem_len) :].detach())
        return new

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids [B, T]`` -> final hidden states ``[B, T, d]`` (no memory)."""
        return self.forward_with_mems(input_ids)[0]

    def lm_loss(
        self, input_ids: torch.Tensor, labels: torch.Tensor, mems: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Per-token negative log-likelihood ``[B, T]``; ``labels`` are the next tokens."""
        hidden = self.forward_with_mems(input_ids, mems)[0]
        return self.head(hidden.reshape(-1, hidden.size(-1)), labels.reshape(-1)).view(labels.shape)

    def log_probs(self, input_ids: torch.Tensor, mems: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Log-probabilities of every next token, ``[B, T, n_token]``."""
        hidden = self.forward_with_mems(input_ids, mems)[0]
        return self.head.log_prob(hidden.reshape(-1, hidden.size(-1))).view(*input_ids.shape, -1)

    # ------------------------------------------------- what proxies ask (ProxyModel)
    def token_embedding(self) -> nn.Module:
        """The adaptive embedding: positions enter each layer's attention, not the input."""
        return self.embedding

    def position_table(self) -> None:
        """None: the sinusoidal positions (``pos_emb``) have no parameters."""
        return None

    def attention_probabilities(
        self, input_ids: torch.Tensor, include_transforms: bool = False
    ) -> list[torch.Tensor]:
        """The input of each layer's ``attn.dropatt``, ``[T, K, B, h]`` turned into ``[B, h, T, K]``."""
        modules = [b.attn.dropatt for b in self.blocks]
        probs = record_forward(modules, lambda: self(input_ids), what="input")
        return [p.permute(2, 3, 0, 1) for p in probs]

    def head_projections(self) -> list[nn.Linear]:
        """``qkv_net`` and ``r_net`` of each layer (not ``o_net``, the output projection)."""
        return [m for b in self.blocks for m in (b.attn.qkv_net, b.attn.r_net)]

    def ffn_activations(self) -> list[nn.Module]:
        """The ``nn.ReLU`` of each layer's feed-forward net."""
        return [m for b in self.blocks for m in b.ffn.modules() if isinstance(m, nn.ReLU)]
