"""FlexiBERT / NAS-Bench-BERT: heterogeneous ELECTRA-style encoders (Serianni & Kalita 2023).

Every layer picks its own token mixer (scaled dot-product or weighted multiplicative
self-attention, a Fourier or cosine "linear transform", or a ConvBERT-style dynamic
convolution), its own head count and its own stack of feed-forward layers. The model is the
bare ``ElectraModel`` of aaronserianni/training-free-nas ``modeling_electra.py``, rewritten as
small modules; see ``/work/shared/specs/flexibert.md`` for the derivation of every count.

Two registered spaces share one config type:

* ``flexibert`` builds the architecture that was *trained* (the one the GLUE scores belong to):
  the entry's own ``hidden_size`` and per-layer ``ffn_dim``.
* ``flexibert-published`` builds what the published training-free numbers were computed on.
  The authors' notebook built every model with the library defaults ``H = 256`` and
  ``F = 1024``, ignoring ``hidden_size`` and ``feed_forward_dimension``; only this build
  reproduces the ``Number of Parameters`` column (all 500 entries) and the other proxy columns.

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

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.errors import ConfigError
from trainfree.spaces import register_space
from trainfree.spaces.base import Gene, ParamCounts, SearchSpace, check_choice, check_int, get_field, seeded

# The operation parameters each operation type accepts (DSC takes any odd kernel size).
OPERATION_PARAMETERS: dict[str, tuple[str, ...]] = {"SA": ("SDP", "WMA"), "LT": ("DFT", "DCT")}
OPERATION_TYPES: tuple[str, ...] = ("SA", "LT", "DSC")
# ConvBERT splits the heads between self-attention and convolution: 1 / ratio of the heads
# are built, each branch gets that many, and the two are concatenated (ratio 2 is hard-wired
# into the original's concatenation, so it is a constant, not a config field).
CONV_HEAD_RATIO = 2


# ----------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class FlexiBertLayer:
    """One encoder layer: its token mixer and its feed-forward stack.

    ``operation_parameter`` is ``"SDP"``/``"WMA"`` for ``SA``, ``"DFT"``/``"DCT"`` for ``LT``
    and the (odd) convolution kernel size as an int for ``DSC``, as in ``BERT_benchmark.json``.
    """

    operation_type: str
    operation_parameter: str | int
    num_heads: int
    ffn_dim: int
    num_ff: int

    @property
    def operation(self) -> str:
        """The gene value: ``"SA-SDP"``, ``"LT-DCT"``, ``"DSC-9"``..."""
        return f"{self.operation_type}-{self.operation_parameter}"


@dataclass(frozen=True)
class FlexiBertConfig:
    """A whole encoder. The fields after ``layers`` are the ELECTRA library defaults that
    every benchmark model shares; they are fields (not constants) so that a config file
    states the full architecture."""

    hidden_size: int
    layers: tuple[FlexiBertLayer, ...]
    vocab_size: int = 30522
    embedding_size: int = 128
    max_position: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        # a list would make the config unhashable; accept one and store a tuple
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def n_layer(self) -> int:
        return len(self.layers)


_LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(FlexiBertLayer))
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(FlexiBertConfig))
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(FlexiBertConfig) if f.default is not MISSING
}
# our layer field -> the key BERT_benchmark.json uses for it
_BENCHMARK_LAYER_KEYS = {
    "operation_type": "operation_type",
    "operation_parameter": "operation_parameter",
    "num_heads": "num_operation_heads",
    "ffn_dim": "feed_forward_dimension",
    "num_ff": "num_feed_forward",
}


def parse_operation(value: Any, field: str = "operation", where: str | None = None) -> tuple[str, str | int]:
    """``"SA-SDP"`` -> ``("SA", "SDP")``, ``"DSC-5"`` -> ``("DSC", 5)`` (the gene form)."""
    if not isinstance(value, str) or value.count("-") != 1:
        raise ConfigError(
            field, value, "an operation such as 'SA-SDP', 'SA-WMA', 'LT-DFT', 'LT-DCT', 'DSC-5'", where
        )
    op_type, param = value.split("-")
    check_choice(op_type, field, OPERATION_TYPES, where)
    if op_type == "DSC":
        if not param.isdigit() or int(param) % 2 == 0:
            raise ConfigError(field, value, "'DSC-<odd kernel size>', e.g. 'DSC-5'", where)
        return op_type, int(param)
    if param not in OPERATION_PARAMETERS[op_type]:
        raise ConfigError(
            field, value, f"one of {[f'{op_type}-{p}' for p in OPERATION_PARAMETERS[op_type]]}", where
        )
    return op_type, param


def _check_kernel(value: Any, field: str, where: str | None) -> int:
    kernel = check_int(value, field, 1, where)
    if kernel % 2 == 0:
        # the depthwise conv pads K // 2 and the unfold (K - 1) // 2: only odd K keep the length
        raise ConfigError(field, value, "an odd convolution kernel size (DSC)", where)
    return kernel


def _check_float(value: Any, field: str, low: float, high: float, where: str | None) -> float:
    """A real number in ``[low, high]`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(field, value, f"a number in [{low}, {high}]", where)
    return float(value)


def _check_heads(hidden: int, layer: FlexiBertLayer, field: str, where: str | None, why: str = "") -> None:
    """Head counts the original code can build with hidden size ``hidden``."""
    if hidden % layer.num_heads != 0:
        raise ConfigError(field, layer.num_heads, f"a divisor of hidden_size {hidden}{why}", where)
    if layer.operation_type == "DSC" and layer.num_heads % CONV_HEAD_RATIO != 0:
        # the attention and convolution branches (k/2 heads of size H/k each) must fill H
        raise ConfigError(field, layer.num_heads, "an even number of heads (DSC splits them in two)", where)


# ----------------------------------------------------------------------------- modules
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
    """

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


# ----------------------------------------------------------------------------- counting
def _lin(n_in: int, n_out: int) -> int:
    """Parameters of a Linear with bias."""
    return n_in * n_out + n_out


def _embedding_params(c: FlexiBertConfig) -> int:
    e = c.embedding_size
    table = (c.vocab_size + c.max_position + c.type_vocab_size) * e
    return table + 2 * e + (_lin(e, c.hidden_size) if e != c.hidden_size else 0)


def _mixer_params(h: int, layer: FlexiBertLayer) -> int:
    """The token mixer (``block.attn``), self-output dense included, LayerNorm excluded."""
    k = layer.num_heads
    inner = k * (h // k)
    if layer.operation_type == "SA":
        weight = inner * inner if layer.operation_parameter == "WMA" else 0
        return 3 * _lin(h, inner) + weight + _lin(h, h)
    if layer.operation_type == "LT":
        return _lin(h, inner)
    kk = int(layer.operation_parameter)
    c = max(1, k // CONV_HEAD_RATIO)
    a = c * (h // k)
    sep_conv = h * kk + h * a + a  # depthwise [H,1,K], pointwise [a,H,1], bias [a,1]
    return 3 * _lin(h, a) + sep_conv + _lin(a, c * kk) + _lin(h, a) + _lin(h, h)


def _ffn_params(h: int, layer: FlexiBertLayer) -> int:
    f = layer.ffn_dim
    return _lin(h, f) + (layer.num_ff - 1) * _lin(f, f) + _lin(f, h)


def _norm_params(h: int, layer: FlexiBertLayer) -> int:
    """attn_norm (absent for LT) and ffn_norm."""
    return (2 if layer.operation_type != "LT" else 1) * 2 * h


def _mixer_flops(h: int, layer: FlexiBertLayer, t: int) -> int:
    """2 x MACs of the token mixer for one sequence of length ``t``."""
    k = layer.num_heads
    s = h // k
    inner = k * s
    if layer.operation_type == "SA":
        macs = 3 * t * h * inner + 2 * k * t * t * s + t * h * h  # q/k/v, QK^T and PV, output
        if layer.operation_parameter == "WMA":
            macs += t * inner * inner
        return 2 * macs
    if layer.operation_type == "LT":
        return 2 * t * h * inner + _transform_flops(str(layer.operation_parameter), k, t, s)
    kk = int(layer.operation_parameter)
    c = max(1, k // CONV_HEAD_RATIO)
    a = c * s
    macs = 3 * t * h * a  # query, key, value
    macs += t * h * kk + t * h * a  # depthwise and pointwise convolution
    macs += t * a * c * kk  # conv_kernel_layer
    macs += t * h * a  # conv_out_layer
    macs += t * a * kk  # dynamic kernel applied to the K-position windows
    macs += 2 * c * t * t * s  # attention QK^T and PV
    macs += t * h * h  # output dense
    return 2 * macs


def _transform_flops(transform: str, n_head: int, t: int, s: int) -> int:
    """The 2-D transform of each ``[T, s]`` head counted as the dense matrix products that
    compute it: a DCT is ``D_T X D_s^T`` (``T s^2 + T^2 s`` MACs); the real part of a DFT is
    ``C_T X C_s - S_T X S_s`` with cosine and sine matrices, twice that. (An FFT needs
    O(T s log(T s)); the matmul-equivalent is used so that every operation is counted the
    same way.)"""
    macs = n_head * (t * s * s + t * t * s)
    return 2 * macs * (2 if transform == "DFT" else 1)


# ----------------------------------------------------------------------------- spaces
@register_space("flexibert")
class FlexiBertSpace(SearchSpace[FlexiBertConfig]):
    """NAS-Bench-BERT's FlexiBERT space, built with the trained dimensions (each config's own
    ``hidden_size`` and per-layer ``ffn_dim``; no ``embedding.project`` when H = E = 128).

    Genome: ``hidden_size``, ``n_layer``, then for each layer slot up to ``max(n_layer)``:
    ``layers[i].operation`` (``"SA-SDP"``, ``"DSC-5"``...), ``.num_heads``, ``.ffn_dim``,
    ``.num_ff``. The value sets must make every genome buildable (every head count divides
    every hidden size; even head counts when a DSC operation is offered); the constructor
    checks it. ``param_counts`` and ``flops`` are closed-form and equal the built model's.
    """

    default_values: ClassVar[dict[str, tuple[Any, ...]]] = {
        "hidden_size": (128, 256),
        "n_layer": (2, 4),
        "operation": ("SA-SDP", "SA-WMA", "LT-DFT", "LT-DCT", "DSC-5", "DSC-9"),
        "num_heads": (2, 4),
        "ffn_dim": (512, 1024),
        "num_ff": (1, 3),
    }

    # ------------------------------------------------------------------ dims
    def effective_config(self, config: FlexiBertConfig) -> FlexiBertConfig:
        """The config whose dimensions ``build``, ``param_counts`` and ``flops`` use."""
        return config

    def _dims_note(self) -> str:
        return ""

    # --------------------------------------------------------------- configs
    def config_from_dict(self, data: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("<root>", data, "an object with fields " + ", ".join(_CONFIG_FIELDS), where)
        unknown = [key for key in data if key not in _CONFIG_FIELDS]
        if unknown:
            raise ConfigError(
                unknown[0], data[unknown[0]], "one of the fields " + ", ".join(_CONFIG_FIELDS), where
            )
        hidden = check_int(get_field(data, "hidden_size", where), "hidden_size", 1, where)
        raw_layers = get_field(data, "layers", where)
        if not isinstance(raw_layers, (list, tuple)) or not raw_layers:
            raise ConfigError("layers", raw_layers, "a non-empty list of layer objects", where)
        layers = tuple(
            self._layer_from_dict(raw, f"layers[{i}]", {n: n for n in _LAYER_FIELDS}, where, strict=True)
            for i, raw in enumerate(raw_layers)
        )

        def opt_int(name: str, minimum: int) -> int:
            return check_int(data.get(name, _DEFAULTS[name]), name, minimum, where)

        def opt_float(name: str) -> float:
            return _check_float(data.get(name, _DEFAULTS[name]), name, 0.0, 1.0, where)

        vocab = opt_int("vocab_size", 1)
        pad = opt_int("pad_token_id", 0)
        if pad >= vocab:
            raise ConfigError("pad_token_id", pad, f"a token id below vocab_size {vocab}", where)
        config = FlexiBertConfig(
            hidden_size=hidden,
            layers=layers,
            vocab_size=vocab,
            embedding_size=opt_int("embedding_size", 1),
            max_position=opt_int("max_position", 1),
            type_vocab_size=opt_int("type_vocab_size", 1),
            layer_norm_eps=opt_float("layer_norm_eps"),
            hidden_dropout=opt_float("hidden_dropout"),
            attention_dropout=opt_float("attention_dropout"),
            initializer_range=opt_float("initializer_range"),
            pad_token_id=pad,
        )
        self.check_config(config, where)
        return config

    def config_from_benchmark(self, entry: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
        """One ``BERT_benchmark.json`` entry (or its ``hparams.model_hparam_overrides``) as a
        config. Errors name the entry (``"entry 17: field 'nas_config.encoder_layers[2]...'"``)."""
        if where is None and isinstance(entry, Mapping) and "id" in entry:
            where = f"entry {entry['id']}"
        if not isinstance(entry, Mapping):
            raise ConfigError("<entry>", entry, "a benchmark entry (an object)", where)
        overrides: Any = entry
        if "nas_config" not in entry:
            hparams = get_field(entry, "hparams", where)
            if not isinstance(hparams, Mapping):
                raise ConfigError("hparams", hparams, "an object", where)
            overrides = get_field(hparams, "model_hparam_overrides", where)
        if not isinstance(overrides, Mapping):
            raise ConfigError("model_hparam_overrides", overrides, "an object", where)
        hidden = check_int(get_field(overrides, "hidden_size", where), "hidden_size", 1, where)
        nas = get_field(overrides, "nas_config", where)
        raw_layers = get_field(nas, "encoder_layers", where) if isinstance(nas, Mapping) else None
        if not isinstance(raw_layers, (list, tuple)) or not raw_layers:
            raise ConfigError("nas_config.encoder_layers", raw_layers, "a non-empty list of layers", where)
        layers = tuple(
            self._layer_from_dict(
                raw, f"nas_config.encoder_layers[{i}]", _BENCHMARK_LAYER_KEYS, where, strict=False
            )
            for i, raw in enumerate(raw_layers)
        )
        config = FlexiBertConfig(hidden_size=hidden, layers=layers)
        self.check_config(config, where)
        return config

    @staticmethod
    def _layer_from_dict(
        raw: Any, prefix: str, keys: Mapping[str, str], where: str | None, strict: bool
    ) -> FlexiBertLayer:
        """Parse one layer; ``keys`` maps our field names to the names used in ``raw``."""
        if not isinstance(raw, Mapping):
            raise ConfigError(prefix, raw, "an object with fields " + ", ".join(keys.values()), where)
        if strict:
            unknown = [key for key in raw if key not in keys.values()]
            if unknown:
                expected = "one of the layer fields " + ", ".join(keys.values())
                raise ConfigError(f"{prefix}.{unknown[0]}", raw[unknown[0]], expected, where)

        def name(ours: str) -> str:
            return f"{prefix}.{keys[ours]}"

        def value(ours: str) -> Any:
            if keys[ours] not in raw:
                raise ConfigError(name(ours), None, "a value (the field is missing)", where)
            return raw[keys[ours]]

        op_type = check_choice(value("operation_type"), name("operation_type"), OPERATION_TYPES, where)
        param = value("operation_parameter")
        if op_type == "DSC":
            param = _check_kernel(param, name("operation_parameter"), where)
        else:
            param = check_choice(param, name("operation_parameter"), OPERATION_PARAMETERS[op_type], where)
        return FlexiBertLayer(
            operation_type=op_type,
            operation_parameter=param,
            num_heads=check_int(value("num_heads"), name("num_heads"), 1, where),
            ffn_dim=check_int(value("ffn_dim"), name("ffn_dim"), 1, where),
            num_ff=check_int(value("num_ff"), name("num_ff"), 1, where),
        )

    def check_config(self, config: FlexiBertConfig, where: str | None = None) -> None:
        """Cross-field checks (heads vs hidden size, for the dims this space builds)."""
        effective = self.effective_config(config)
        for i, layer in enumerate(config.layers):
            _check_heads(config.hidden_size, layer, f"layers[{i}].num_heads", where)
            _check_heads(effective.hidden_size, layer, f"layers[{i}].num_heads", where, self._dims_note())

    # ---------------------------------------------------------------- genome
    def genes(self) -> list[Gene]:
        where = f"space {self.name}"
        v = self.values
        for key in ("hidden_size", "n_layer", "num_heads", "ffn_dim", "num_ff"):
            for x in v[key]:
                check_int(x, key, 1, where)
        # every combination must build, so that sample/mutate/crossover never produce a bad config
        for op in v["operation"]:
            op_type, param = parse_operation(op, "operation", where)
            for h in v["hidden_size"]:
                for k in v["num_heads"]:
                    try:
                        self.check_config(FlexiBertConfig(h, (FlexiBertLayer(op_type, param, k, 1, 1),)))
                    except ConfigError as exc:
                        why = f"{exc.expected} (combined with operation {op})"
                        raise ConfigError("num_heads", k, why, where) from None
        genes = [Gene("hidden_size", v["hidden_size"]), Gene("n_layer", v["n_layer"])]
        for i in range(max(v["n_layer"])):
            genes += [
                Gene(f"layers[{i}].operation", v["operation"]),
                Gene(f"layers[{i}].num_heads", v["num_heads"]),
                Gene(f"layers[{i}].ffn_dim", v["ffn_dim"]),
                Gene(f"layers[{i}].num_ff", v["num_ff"]),
            ]
        return genes

    def to_genes(self, config: FlexiBertConfig) -> list[Any]:
        slots = max(self.values["n_layer"])
        out: list[Any] = [config.hidden_size, config.n_layer]
        for i in range(slots):
            layer = config.layers[min(i, config.n_layer - 1)]  # unused slots repeat the last layer
            out += [layer.operation, layer.num_heads, layer.ffn_dim, layer.num_ff]
        return out

    def from_genes(self, values: Sequence[Any]) -> FlexiBertConfig:
        if len(values) != self.n_genes:
            raise ConfigError("<genes>", list(values), f"a list of {self.n_genes} gene values")
        n_layer = check_int(values[1], "n_layer")
        if n_layer > max(self.values["n_layer"]):
            raise ConfigError("n_layer", n_layer, f"at most {max(self.values['n_layer'])} (the layer slots)")
        layers = []
        for i in range(n_layer):
            op, heads, ffn_dim, num_ff = values[2 + 4 * i : 6 + 4 * i]
            op_type, param = parse_operation(op, f"layers[{i}].operation")
            layers.append(
                {
                    "operation_type": op_type,
                    "operation_parameter": param,
                    "num_heads": heads,
                    "ffn_dim": ffn_dim,
                    "num_ff": num_ff,
                }
            )
        # one validation path for every way a config is made
        return self.config_from_dict({"hidden_size": values[0], "layers": layers})

    # ---------------------------------------------------------------- models
    def build(
        self, config: FlexiBertConfig, seed: int | None = 0, device: str | torch.device | None = None
    ) -> FlexiBertModel:
        """Construct (on the CPU, with the CPU random stream, like the notebook) and move to
        ``device``: the weights are the same on every device. ``"meta"`` skips allocation and
        initialisation."""
        self.check_config(config)
        dims = self.effective_config(config)
        if device is not None and torch.device(device).type == "meta":
            with torch.device("meta"):
                return FlexiBertModel(dims)
        with seeded(seed), torch.device("cpu"):
            model = FlexiBertModel(dims)
        return model.to(device) if device is not None else model

    def param_counts(self, config: FlexiBertConfig) -> ParamCounts:
        c = self.effective_config(config)
        h = c.hidden_size
        embedding = _embedding_params(c)
        attention = sum(_mixer_params(h, layer) for layer in c.layers)
        ffn = sum(_ffn_params(h, layer) for layer in c.layers)
        norm = sum(_norm_params(h, layer) for layer in c.layers)
        total = embedding + attention + ffn + norm
        return ParamCounts(
            embedding=embedding,
            attention=attention,
            ffn=ffn,
            norm=norm,
            head=0,
            other=0,
            decoder=total - embedding,
            total=total,
        )

    def flops(self, config: FlexiBertConfig, seq_len: int) -> int:
        """Forward FLOPs of one sequence: 2 x multiply-accumulates of every matrix product
        (linear layers, the embedding projection, QK^T and PV, the separable convolution, the
        DSC kernel predictor and its K-tap mixing, and the LT transforms counted as the dense
        products that compute them, see ``_transform_flops``). Embedding lookups, softmax,
        GELU, LayerNorm and other element-wise work are not counted. There is no output head."""
        c = self.effective_config(config)
        t = check_int(seq_len, "seq_len", 1)
        if t > c.max_position:
            raise ConfigError("seq_len", seq_len, f"an integer <= max_position {c.max_position}")
        h = c.hidden_size
        total = 2 * t * c.embedding_size * h if c.embedding_size != h else 0
        for layer in c.layers:
            f = layer.ffn_dim
            total += _mixer_flops(h, layer, t) + 2 * t * (h * f + (layer.num_ff - 1) * f * f + f * h)
        return total

    def vocab_size(self, config: FlexiBertConfig) -> int:
        return config.vocab_size

    def max_seq_len(self, config: FlexiBertConfig) -> int:
        return config.max_position


@register_space("flexibert-published")
class FlexiBertPublishedSpace(FlexiBertSpace):
    """The same configs, built as the published training-free numbers were: hidden size 256
    and intermediate size 1024 for every layer, whatever the config says (the authors'
    notebook left ``ElectraConfig`` at its defaults). ``param_counts(c).total`` equals the
    ``Number of Parameters`` column for all 500 benchmark entries."""

    PUBLISHED_HIDDEN: ClassVar[int] = 256
    PUBLISHED_FFN: ClassVar[int] = 1024

    def effective_config(self, config: FlexiBertConfig) -> FlexiBertConfig:
        layers = tuple(dataclasses.replace(layer, ffn_dim=self.PUBLISHED_FFN) for layer in config.layers)
        return dataclasses.replace(config, hidden_size=self.PUBLISHED_HIDDEN, layers=layers)

    def _dims_note(self) -> str:
        return f" (the published models use hidden size {self.PUBLISHED_HIDDEN})"


__all__ = [
    "ConvSelfAttention",
    "FeedForward",
    "FlexiBertConfig",
    "FlexiBertLayer",
    "FlexiBertModel",
    "FlexiBertPublishedSpace",
    "FlexiBertSpace",
    "LinearTransform",
    "SelfAttention",
    "dct",
    "dct_2d",
]
