"""FlexiBERT configs: the frozen dataclasses, and the parsers of our JSON form and of
NAS-Bench-BERT's ``BERT_benchmark.json`` entries.

A config is a hidden size and a list of layers, each with its token mixer (``operation_type``
and ``operation_parameter``), head count and feed-forward stack. The parsers check every field
and raise :class:`ConfigError` naming it; the cross-field rules that depend on the dimensions a
space builds (heads dividing the hidden size) are the space's ``check_config``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from typing import Any

from trainfree.errors import ConfigError
from trainfree.spaces.checks import check_choice, check_int, get_field

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


def check_heads(hidden: int, layer: FlexiBertLayer, field: str, where: str | None, why: str = "") -> None:
    """Head counts the original code can build with hidden size ``hidden``."""
    if hidden % layer.num_heads != 0:
        raise ConfigError(field, layer.num_heads, f"a divisor of hidden_size {hidden}{why}", where)
    if layer.operation_type == "DSC" and layer.num_heads % CONV_HEAD_RATIO != 0:
        # the attention and convolution branches (k/2 heads of size H/k each) must fill H
        raise ConfigError(field, layer.num_heads, "an even number of heads (DSC splits them in two)", where)


# ----------------------------------------------------------------------------- parsers
def parse_config(data: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
    """Our JSON form (``config_to_dict``'s output); unknown fields are refused, the ELECTRA
    defaults may be omitted. Cross-field checks are left to the space."""
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
        _layer_from_dict(raw, f"layers[{i}]", {n: n for n in _LAYER_FIELDS}, where, strict=True)
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
    return FlexiBertConfig(
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


def parse_benchmark_entry(entry: Mapping[str, Any], where: str | None = None) -> FlexiBertConfig:
    """One ``BERT_benchmark.json`` entry (or its ``hparams.model_hparam_overrides``). Errors
    name the entry (``"entry 17: field 'nas_config.encoder_layers[2]...'"``)."""
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
        _layer_from_dict(raw, f"nas_config.encoder_layers[{i}]", _BENCHMARK_LAYER_KEYS, where, strict=False)
        for i, raw in enumerate(raw_layers)
    )
    return FlexiBertConfig(hidden_size=hidden, layers=layers)


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
