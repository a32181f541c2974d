"""The FlexiBERT encoder as PyTorch modules: the bare ``ElectraModel`` of NAS-Bench-BERT.

Rewritten as small modules from aaronserianni/training-free-nas ``modeling_electra.py``
(Serianni & Kalita 2023). Every layer picks its own token mixer: scaled dot-product or weighted
multiplicative self-attention (``SelfAttention``), a Fourier or cosine "linear transform"
(``LinearTransform``), or a ConvBERT-style dynamic convolution (``ConvSelfAttention``); then
its own stack of feed-forward layers (``FeedForward``). Shapes: ``B`` batch, ``T`` tokens,
``E`` embedding width, ``H`` hidden size, ``k`` heads of size ``s = H // k``.

Where things live (original name -> ours), for proxies that port the authors' metrics:

=====================================================  ===================================
``embeddings.{word,position,token_type}_embeddings``   ``embedding.*_embeddings``
``embeddings.LayerNorm`` / ``embeddings_project``      ``embedding.norm`` / ``embedding.project``
``layer[i].operation.operation`` (query, key, value,   ``blocks[i].attn`` (same attribute names;
weight, input, softmax, conv parts)                    ``weight`` exists only for WMA)
``layer[i].operation.output.dense``                    ``blocks[i].attn.output``
``layer[i].operation.output.LayerNorm``                ``blocks[i].attn_norm`` (``None`` for LT)
``layer[i].intermediate.{dense_in,dense_list}``        ``blocks[i].ffn.{dense_in,stack}``
``layer[i].intermediate.intermediate_act_fn``          ``blocks[i].ffn.act`` (called ``num_ff`` times)
``layer[i].output.dense`` / ``.LayerNorm``             ``blocks[i].ffn.dense_out`` / ``blocks[i].ffn_norm``
=====================================================  ===================================

Modules are constructed and initialised in the original's order (construction draws the
PyTorch default initialisation, then HF's ``_init_weights`` is applied in ``Module.apply``
order), so with the same seed the random stream is consumed the same way as in the notebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.spaces.flexibert_config import CONV_HEAD_RATIO, FlexiBertConfig, FlexiBertLayer
from trainfree.spaces.protocol import record_forward

MLM_MASK_RATE = 0.15
MLM_MASK_ID = 103  # ELECTRA / BERT uncased [MASK]


def dct(x: torch.Tensor) -> torch.Tensor:
    """Un-normalised DCT-II along the last axis, torch-dct convention (factor 2 included):
    ``y[k] = 2 * sum_n x[n] cos(pi * k * (2n + 1) / (2N))``, computed with one FFT
    (Makhoul's reordering), exactly as the original's copy of torch-dct."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)  # even samples, then odd reversed
    spectrum = torch.fft.fft(v, dim=-1)
    k = -torch.arange(n, dtype=x.dtype, device=x.device) * math.pi / (2 * n)
    return 2 * (spectrum.real * torch.cos(k) - spectrum.imag * torch.sin(k))


def dct_2d(x: torch.Tensor) -> torch.Tensor:
    """DCT-II over the last axis, then over the second-to-last (as the original's dct_2d)."""
    return dct(dct(x).transpose(-1, -2)).transpose(-1, -2)


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """[B, T, n_head * s] -> [B, n_head, T, s]"""
    b, t, c = x.shape
    return x.view(b, t, n_head, c // n_head).permute(0, 2, 1, 3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, n_head, T, s] -> [B, T, n_head * s]"""
    b, n_head, t, s = x.shape
    return x.permute(0, 2, 1, 3).reshape(b, t, n_head * s)


class Embedding(nn.Module):
    """Word + token-type + position embeddings (width E), LayerNorm, dropout, and a projection
    to the hidden size H when E != H (ELECTRA's ``embeddings_project``)."""

    def __init__(self, config: FlexiBertConfig) -> None:
        super().__init__()
        e = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, e, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position, e)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, e)
        self.norm = nn.LayerNorm(e, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.project = nn.Linear(e, config.hidden_size) if e != config.hidden_size else None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device)  # [T]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # [B, T, E]
        x = x + self.position_embeddings(positions)
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x  # [B, T, H]


class SelfAttention(nn.Module):
    """Multi-head self-attention (SA-SDP), or with ``weighted`` the weighted multiplicative
    variant (SA-WMA) whose query passes through an extra bias-free ``weight`` matrix. Ends with
    the self-output dense and its dropout; the residual LayerNorm is the block's ``attn_norm``.
    The attention mask is not applied, as in the original (padded positions are attended)."""

    def __init__(self, config: FlexiBertConfig, num_heads: int, weighted: bool) -> None:
        super().__init__()
        h = config.hidden_size
        self.n_head = num_heads
        self.head_size = h // num_heads
        inner = self.n_head * self.head_size
        self.weighted = weighted
        self.query = nn.Linear(h, inner)
        self.key = nn.Linear(h, inner)
        self.value = nn.Linear(h, inner)
        if weighted:  # only WMA has it: proxies test hasattr(attn, "weight") as the notebook did
            self.weight = nn.Linear(inner, inner, bias=False)
        self.softmax = nn.Softmax(dim=-1)  # a module so that hooks see the attention probabilities
        self.dropout = nn.Dropout(config.attention_dropout)
        self.output = nn.Linear(h, h)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query(x)  # [B, T, k*s]
        if self.weighted:
            q = self.weight(q)
        q = _split_heads(q, self.n_head)  # [B, k, T, s]
        k = _split_heads(self.key(x), self.n_head)
        v = _split_heads(self.value(x), self.n_head)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)  # [B, k, T, T]
        probs = self.dropout(self.softmax(scores))
        ctx = _merge_heads(torch.matmul(probs, v))  # [B, T, k*s]
        return self.output_dropout(self.output(ctx))  # [B, T, H]


class LinearTransform(nn.Module):
    """LT-DFT / LT-DCT (FNet-like): a linear ``input`` projection split into heads, then the
    real part of the 2-D DFT, or the un-normalised 2-D DCT-II, over (sequence, head dim) of
    each head. No output dense, residual or LayerNorm: the result goes straight into the
    feed-forward stack."""

    def __init__(self, config: FlexiBertConfig, num_heads: int, transform: str) -> None:
        super().__init__()
        h = config.hidden_size
        self.n_head = num_heads
        self.transform = transform
        self.input = nn.Linear(h, num_heads * (h // num_heads))
        # The original applies a softmax to the transform output and throws it away; the
        # notebook's "Head Softmax Confidence" hooks it, so it is kept (and computed) here.
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = _split_heads(self.input(x), self.n_head)  # [B, k, T, s]
        y = torch.fft.fft2(u).real if self.transform == "DFT" else dct_2d(u)  # [B, k, T, s]
        self.softmax(y)  # unused output, see __init__
        return _merge_heads(y)  # [B, T, H]


class SeparableConv1d(nn.Module):
    """Depthwise (kernel K, 'same' padding) then pointwise convolution plus a bias; its weights
    are drawn N(0, 0.02) here, in the constructor, as ConvBERT does (the model-level init
    leaves Conv1d alone)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, init_std: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(
            channels_in, channels_in, kernel_size, groups=channels_in, padding=kernel_size // 2, bias=False
        )
        self.pointwise = nn.Conv1d(channels_in, channels_out, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels_out, 1))
        if not self.bias.is_meta:
            nn.init.normal_(self.depthwise.weight, mean=0.0, std=init_std)
            nn.init.normal_(self.pointwise.weight, mean=0.0, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x)) + self.bias  # [B, C_in, T] -> [B, C_out, T]


class ConvSelfAttention(nn.Module):
    """DSC: ConvBERT's mixed attention. Of the ``k`` requested heads, ``c = max(1, k // 2)``
    are built with the *original* head size ``s = H // k`` (so ``a = c * s = H / 2``):

    * self-attention over ``c`` heads;
    * span-based dynamic convolution: a separable convolution of the input, multiplied by the
      query, predicts per position and head a softmax-normalised kernel of K taps, which
      mixes a window of K positions of ``conv_out_layer(x)``.

    The two ``[B, T, c, s]`` results are concatenated on the head axis (width ``2a = H``) and
    go through the self-output dense. Attribute names follow the original.
    """

    def __init__(self, config: FlexiBertConfig, num_heads: int, kernel_size: int) -> None:
        super().__init__()
        h = config.hidden_size
        self.n_head = max(1, num_heads // CONV_HEAD_RATIO)  # c
        self.head_size = h // num_heads  # s, from the requested head count
        self.kernel_size = kernel_size  # K
        inner = self.n_head * self.head_size  # a
        self.query = nn.Linear(h, inner)
        self.key = nn.Linear(h, inner)
        self.value = nn.Linear(h, inner)
        self.key_conv_attn_layer = SeparableConv1d(h, inner, kernel_size, config.initializer_range)
        self.conv_kernel_layer = nn.Linear(inner, self.n_head * kernel_size)
        self.conv_out_layer = nn.Linear(h, inner)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(config.attention_dropout)
        self.output = nn.Linear(h, h)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        c, s, kk = self.n_head, self.head_size, self.kernel_size
        q = self.query(x)  # [B, T, a]

        # dynamic convolution branch
        key_conv = self.key_conv_attn_layer(x.transpose(1, 2)).transpose(1, 2)  # [B, T, a]
        kernel = self.conv_kernel_layer(key_conv * q)  # [B, T, c*K]
        kernel = torch.softmax(kernel.reshape(b * t * c, kk, 1), dim=1)  # [B*T*c, K, 1]
        conv_in = self.conv_out_layer(x).transpose(1, 2)  # [B, a, T]
        pad = (kk - 1) // 2
        windows = F.pad(conv_in, (pad, pad)).unfold(-1, kk, 1)  # [B, a, T, K]: positions t-pad..t+pad
        windows = windows.permute(0, 2, 1, 3).reshape(b * t * c, s, kk)  # [B*T*c, s, K]
        conv_out = torch.matmul(windows, kernel).reshape(b, t, c, s)  # [B, T, c, s]

        # self-attention branch (c heads of size s)
        qh = _split_heads(q, c)  # [B, c, T, s]
        kh = _split_heads(self.key(x), c)
        vh = _split_heads(self.value(x), c)
        scores = torch.matmul(qh, kh.transpose(-1, -2)) / math.sqrt(s)  # [B, c, T, T]
        probs = self.dropout(self.softmax(scores))
        ctx = torch.matmul(probs, vh).permute(0, 2, 1, 3)  # [B, T, c, s]

        mixed = torch.cat([ctx, conv_out], dim=2).reshape(b, t, 2 * c * s)  # [B, T, H]
        return self.output_dropout(self.output(mixed))


class FeedForward(nn.Module):
    """``dense_in`` (H -> F), ``num_ff - 1`` stacked F -> F layers, each followed by GELU, then
    ``dense_out`` (F -> H) and dropout. The residual LayerNorm is the block's ``ffn_norm``.
    ``act`` is one module called ``num_ff`` times (the notebook hooks it for activations)."""

    def __init__(self, config: FlexiBertConfig, ffn_dim: int, num_ff: int) -> None:
        super().__init__()
        h = config.hidden_size
        self.dense_in = nn.Linear(h, ffn_dim)
        self.stack = nn.ModuleList(nn.Linear(ffn_dim, ffn_dim) for _ in range(num_ff - 1))
        self.act = nn.GELU()  # exact (erf) GELU, ELECTRA's "gelu"
        self.dense_out = nn.Linear(ffn_dim, h)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dense_in(x))  # [B, T, F]
        for layer in self.stack:
            x = self.act(layer(x))
        return self.dropout(self.dense_out(x))  # [B, T, H]


class Block(nn.Module):
    """One encoder layer (post-LayerNorm, as BERT):
    ``a = attn_norm(attn(x) + x)`` (LT: ``a = attn(x)``), then ``ffn_norm(ffn(a) + a)``."""

    def __init__(self, config: FlexiBertConfig, layer: FlexiBertLayer) -> None:
        super().__init__()
        h = config.hidden_size
        self.attn: nn.Module
        self.attn_norm: nn.LayerNorm | None
        if layer.operation_type == "SA":
            self.attn = SelfAttention(config, layer.num_heads, weighted=layer.operation_parameter == "WMA")
        elif layer.operation_type == "LT":
            self.attn = LinearTransform(config, layer.num_heads, str(layer.operation_parameter))
        else:
            self.attn = ConvSelfAttention(config, layer.num_heads, int(layer.operation_parameter))
        has_norm = layer.operation_type != "LT"
        self.attn_norm = nn.LayerNorm(h, eps=config.layer_norm_eps) if has_norm else None
        self.ffn = FeedForward(config, layer.ffn_dim, layer.num_ff)
        self.ffn_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attn(x)  # [B, T, H]
        if self.attn_norm is not None:
            a = self.attn_norm(a + x)
        return self.ffn_norm(self.ffn(a) + a)


class FlexiBertModel(nn.Module):
    """The bare encoder (``ElectraModel``): no pooler, no head.

    ``forward(input_ids [B, T], token_type_ids=None)`` returns the last hidden state
    ``[B, T, H]``; with ``output_hidden_states=True`` it returns ``(last, hidden_states)``,
    the ``L + 1`` states (projected embeddings, then each layer's output). ``attention_mask``
    is accepted, so that a tokenizer's output can be passed with ``**``, and ignored exactly
    as the original ignores it. A freshly built model is in training mode (dropout active),
    as the notebook's models were; call ``.eval()`` for deterministic outputs.

    For proxies (:class:`~trainfree.spaces.protocol.ProxyModel`) the encoder has a masked-LM
    objective through a *tied, parameter-free* decoder (see :meth:`output_logits`): the
    benchmark's encoders have no head of their own, so the decoder adds no parameter and no
    randomness.
    """

    causal = False
    time_major = False

    def __init__(self, config: FlexiBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = Embedding(config)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in config.layers)
        if not self.embedding.word_embeddings.weight.is_meta:
            self.apply(self._init_weights)  # children before parents, as HF's post_init

    def _init_weights(self, module: nn.Module) -> None:
        """HF BERT init: Linear/Embedding ~ N(0, 0.02), biases 0, padding row 0, LayerNorm (1, 0).
        Conv1d is deliberately untouched (SeparableConv1d initialises itself)."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        del attention_mask  # ignored by every layer of the original
        t = input_ids.shape[1]
        if t > self.config.max_position:
            raise ValueError(f"sequence length {t} exceeds max_position {self.config.max_position}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embedding(input_ids, token_type_ids)  # [B, T, H]
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return (x, states) if output_hidden_states else x

    # ------------------------------------------------- what proxies ask (ProxyModel)
    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tied decoder: ``hidden [.., H]`` mapped back to the embedding width with the
        transpose of ``embedding.project`` and scored against the word table -> ``[N, vocab]``."""
        hidden = hidden.reshape(-1, hidden.shape[-1])
        if self.embedding.project is not None:
            hidden = hidden @ self.embedding.project.weight  # [N, H] @ [H, E] -> [N, E]
        return hidden @ self.embedding.word_embeddings.weight.t()

    def mean_lm_loss(self, ids: torch.Tensor, seed: int) -> torch.Tensor:
        """Masked-LM cross-entropy of ``ids[:, :-1]``: a seeded 15% of the positions (at
        least one) replaced by ``[MASK]`` and predicted through :meth:`output_logits`."""
        ids = ids[:, :-1]  # [B, T]
        gen = torch.Generator().manual_seed(seed + 1)
        masked = torch.rand(ids.shape, generator=gen) < MLM_MASK_RATE
        masked.view(-1)[0] = True
        mask_id = min(MLM_MASK_ID, self.config.vocab_size - 1)
        hidden = self(ids.masked_fill(masked, mask_id))  # [B, T, H]
        return F.cross_entropy(self.output_logits(hidden[masked]), ids[masked])

    def token_embedding(self) -> nn.Module:
        return self.embedding.word_embeddings

    def position_table(self) -> nn.Embedding:
        return self.embedding.position_embeddings

    def attention_probabilities(
        self, input_ids: torch.Tensor, include_transforms: bool = False
    ) -> list[torch.Tensor]:
        """The output of each mixer's ``softmax`` ``[B, h, T, T]``; with ``include_transforms``
        also the LT layers' softmax of the transform output, which the original computes and
        throws away (the notebook's softmax confidence includes it)."""
        modules = [
            b.attn.softmax
            for b in self.blocks
            if include_transforms or not isinstance(b.attn, LinearTransform)
        ]
        return record_forward(modules, lambda: self(input_ids))

    def head_projections(self) -> list[nn.Linear]:
        """``query``/``key``/``value``, ``weight`` (WMA), ``input`` (LT), ``conv_out_layer``
        (DSC): every Linear of a mixer but the output dense and ConvBERT's kernel predictor
        (the notebook's ``out_features >= 128`` rule excluded exactly it)."""
        return [
            m
            for b in self.blocks
            for name, m in b.attn.named_children()
            if isinstance(m, nn.Linear) and name not in ("output", "conv_kernel_layer")
        ]

    def ffn_activations(self) -> list[nn.Module]:
        """``ffn.act`` of each layer (the GELU, called once per stacked layer)."""
        return [b.ffn.act for b in self.blocks]
