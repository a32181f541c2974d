"""The two FlexiBERT / NAS-Bench-BERT search spaces: genome, closed-form counts, ``build``.

NAS-Bench-BERT (Serianni & Kalita 2023) trained 500 heterogeneous ELECTRA-style encoders; the
model is in ``flexibert_model.py``, the config and its parsers in ``flexibert_config.py``.
Two registered spaces share one config type:

* ``flexibert`` builds the architecture that was *trained* (the one the GLUE scores belong to):
  the entry's own ``hidden_size`` and per-layer ``ffn_dim``.
* ``flexibert-published`` builds what the published training-free numbers were computed on.
  The authors' notebook built every model with the library defaults ``H = 256`` and
  ``F = 1024``, ignoring ``hidden_size`` and ``feed_forward_dimension``; only this build
  reproduces the ``Number of Parameters`` column (all 500 entries) and the other proxy columns.

The parameter counts are closed-form, module by module (a Linear with bias has
``n_in * n_out + n_out`` parameters):

* embedding: ``(vocab + max_position + type_vocab) E`` tables, a LayerNorm ``2 E``, and the
  projection ``E H + H`` when ``E != H``;
* token mixer with ``k`` heads (``inner = k * (H // k)``): SA ``3 (H inner + inner) + H^2 + H``
  (WMA adds ``inner^2``); LT ``H inner + inner``; DSC with ``c = max(1, k // 2)`` heads of the
  original size (``a = c * (H // k)``) and kernel ``K``: ``3 (H a + a)``, the separable
  convolution ``H K + H a + a``, the kernel predictor ``a c K + c K``, ``conv_out_layer``
  ``H a + a`` and the output dense ``H^2 + H``;
* feed-forward: ``(H F + F) + (num_ff - 1)(F^2 + F) + (F H + H)``;
* LayerNorms: ``2 H`` after the mixer (none for LT) and ``2 H`` after the feed-forward stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from trainfree.errors import ConfigError
from trainfree.spaces import register_space
from trainfree.spaces.base import (
    MAX_LAYERS,
    BenchmarkSource,
    Gene,
    ParamCounts,
    SearchSpace,
    check_int,
    seeded,
)
from trainfree.spaces.flexibert_config import (
    CONV_HEAD_RATIO,
    FlexiBertConfig,
    FlexiBertLayer,
    check_heads,
    parse_benchmark_entry,
    parse_config,
    parse_operation,
)
from trainfree.spaces.flexibert_model import (
    ConvSelfAttention,
    FeedForward,
    FlexiBertModel,
    LinearTransform,
    SelfAttention,
    dct,
    dct_2d,
)


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
    benchmark = BenchmarkSource(
        title="NAS-Bench-BERT",
        path="nas-bench-bert/BERT_benchmark.json",
        reader="nas-bench-bert",
        targets=("glue", "cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts"),
        higher_is_better=True,
    )

    # ------------------------------------------------------------------ dims
    def effective_config(self, config: FlexiBertConfig) -> FlexiBertConfig:
        """The config whose dimensions ``build``, ``param_counts`` and ``flops`` use."""
        return config

    def _dims_note(self) -> str:
        return ""

    # --------------------------------------------------------------- configs
    def config_from_dict(self, data: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
        config = parse_config(data, where)
        self.check_config(config, where)
        return config

    def config_from_benchmark(self, entry: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
        """One ``BERT_benchmark.json`` entry (or its ``hparams.model_hparam_overrides``) as a
        config. Errors name the entry (``"entry 17: field 'nas_config.encoder_layers[2]...'"``)."""
        if where is None and isinstance(entry, Mapping) and "id" in entry:
            where = f"entry {entry['id']}"
        config = parse_benchmark_entry(entry, where)
        self.check_config(config, where)
        return config

    def check_config(self, config: FlexiBertConfig, where: str | None = None) -> None:
        """Cross-field checks (heads vs hidden size, for the dims this space builds)."""
        effective = self.effective_config(config)
        for i, layer in enumerate(config.layers):
            check_heads(config.hidden_size, layer, f"layers[{i}].num_heads", where)
            check_heads(effective.hidden_size, layer, f"layers[{i}].num_heads", where, self._dims_note())

    # ---------------------------------------------------------------- genome
    def genes(self) -> list[Gene]:
        where = f"space {self.name}"
        v = self.values
        for key in ("hidden_size", "num_heads", "ffn_dim", "num_ff"):
            self.int_values(key, 1)
        self.int_values("n_layer", 1, MAX_LAYERS)
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

    def cost_features(self, config: FlexiBertConfig, batch_size: int, seq_len: int) -> dict[str, float]:
        """The generic features, with the token mixers' FLOPs by kind (self-attention, the LT
        transforms - which run as FFTs, not as the dense products the FLOPs count - and the
        dynamic convolutions, each with its own speed per FLOP), the feed-forward FLOPs, the
        number of feed-forward matrices (a fixed overhead each) and the element-wise work."""
        c = self.effective_config(config)
        B, t, h = batch_size, seq_len, c.hidden_size
        mixer = {"SA": 0, "LT": 0, "DSC": 0}
        ffn = ff_layers = elementwise = 0
        for layer in c.layers:
            f = layer.ffn_dim
            mixer[layer.operation_type] += _mixer_flops(h, layer, t)
            ffn += 2 * t * (h * f + (layer.num_ff - 1) * f * f + f * h)
            ff_layers += layer.num_ff + 1
            elementwise += t * (4 * h + layer.num_ff * f)
        out = super().cost_features(config, batch_size, seq_len)
        out.update(
            sa_flops=float(B * mixer["SA"]),
            lt_flops=float(B * mixer["LT"]),
            dsc_flops=float(B * mixer["DSC"]),
            ffn_flops=float(B * ffn),
            ff_layers=float(ff_layers),
            elementwise=float(B * elementwise),
        )
        return out

    def vocab_size(self, config: FlexiBertConfig) -> int:
        return config.vocab_size

    def max_seq_len(self, config: FlexiBertConfig) -> int:
        return config.max_position


@register_space("flexibert-published")
class FlexiBertPublishedSpace(FlexiBertSpace):
    """FlexiBERT configs built as the published training-free numbers were: hidden size 256
    and intermediate size 1024 for every layer, whatever the config says.

    The authors' notebook left ``ElectraConfig`` at its defaults; ``param_counts(c).total``
    equals the ``Number of Parameters`` column for all 500 benchmark entries."""

    PUBLISHED_HIDDEN: ClassVar[int] = 256
    PUBLISHED_FFN: ClassVar[int] = 1024

    def effective_config(self, config: FlexiBertConfig) -> FlexiBertConfig:
        layers = tuple(dataclasses.replace(layer, ffn_dim=self.PUBLISHED_FFN) for layer in config.layers)
        return dataclasses.replace(config, hidden_size=self.PUBLISHED_HIDDEN, layers=layers)

    def _dims_note(self) -> str:
        return f" (the published models use hidden size {self.PUBLISHED_HIDDEN})"


# the model classes stay importable from here, where they used to live
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
