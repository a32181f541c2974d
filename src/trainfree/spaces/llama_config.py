"""The ``llama`` space's config, its readers, and the reference models shipped with it.

A :class:`LlamaArch` is a stock transformers ``LlamaConfig`` in everything that decides
parameters and cost: the field names are the Hugging Face ones, so that a config file reads
like a ``config.json``, and :func:`hf_config_kwargs` turns it into the keyword arguments of
``transformers.LlamaConfig``. Two choices differ from a raw ``config.json``:

- the vocabulary is a *named tokenizer* (:data:`TOKENIZERS`), not a free integer: a search over
  vocabulary sizes is a search over tokenizers, and only the ones people ship make sense;
- embedding tying is one boolean, ``tie_word_embeddings`` (MobileLLM's custom config says
  ``share_embedding: true`` with ``tie_word_embeddings: false``; both mean one shared table).

This file knows nothing of PyTorch or transformers (``_llama_model.py`` builds).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainfree.errors import ConfigError
from trainfree.spaces.checks import check_int, get_field


@dataclass(frozen=True)
class Tokenizer:
    """A tokenizer people ship: its vocabulary size and who uses it."""

    vocab_size: int
    used_by: str


#: name -> tokenizer; the vocabulary of a config comes from its ``tokenizer`` field
TOKENIZERS: dict[str, Tokenizer] = {
    "llama2": Tokenizer(32000, "Llama 2, Mistral 7B, TinyLlama, MobileLLM (SentencePiece BPE)"),
    "smollm": Tokenizer(49152, "SmolLM, SmolLM2 (HuggingFaceTB's cosmo2 BPE)"),
    "llama3": Tokenizer(128256, "Llama 3.x (tiktoken BPE)"),
}


@dataclass(frozen=True)
class LlamaArch:
    """One Llama-family decoder (homogeneous layers), in Hugging Face field names.

    ``head_dim`` is free: ``num_attention_heads * head_dim`` need not equal ``hidden_size``
    (``LlamaConfig`` supports that; Llama 3.2-3B has 24 x 128 = 3072 = hidden_size, Gemma
    does not). ``num_key_value_heads`` divides ``num_attention_heads`` (grouped-query
    attention; equal: multi-head, 1: multi-query). The last four fields change no parameter
    count or cost: ``max_position_embeddings`` bounds the context that may be asked for.
    """

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    tie_word_embeddings: bool
    tokenizer: str
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    @property
    def vocab_size(self) -> int:
        return TOKENIZERS[self.tokenizer].vocab_size

    @property
    def q_width(self) -> int:
        """Width of the queries (and of the attention output): heads x head size."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the keys (and of the values): KV heads x head size."""
        return self.num_key_value_heads * self.head_dim


FIELDS = tuple(f.name for f in dataclasses.fields(LlamaArch))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LlamaArch) if f.default is not dataclasses.MISSING}


def check_kv_heads(kv: int, heads: int, where: str | None = None) -> int:
    """``kv`` must divide ``heads`` (each KV head serves ``heads / kv`` query heads)."""
    if heads % kv:
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        raise ConfigError(
            "num_key_value_heads", kv, f"a divisor of num_attention_heads={heads} (one of {divisors})", where
        )
    return kv


def check_heads(heads: int, hidden: int, where: str | None = None) -> int:
    """``heads`` must divide ``hidden_size``: transformers' ``LlamaConfig`` refuses anything
    else, even with an explicit ``head_dim``."""
    if hidden % heads:
        raise ConfigError(
            "num_attention_heads",
            heads,
            f"a divisor of hidden_size={hidden} (transformers' LlamaConfig)",
            where,
        )
    return heads


def check_tokenizer(name: Any, where: str | None = None) -> str:
    if not isinstance(name, str) or name not in TOKENIZERS:
        known = ", ".join(f"{k} ({t.vocab_size:,})" for k, t in TOKENIZERS.items())
        raise ConfigError("tokenizer", name, f"a known tokenizer: {known}", where)
    return name


def _positive_float(value: Any, field: str, where: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise ConfigError(field, value, "a finite positive number", where)
    return float(value)


def _bool(value: Any, field: str, where: str | None) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "true or false", where)
    return value


def config_from_dict(data: Mapping[str, Any], where: str | None = None) -> LlamaArch:
    """Validate our JSON form (``dataclasses.asdict`` of a :class:`LlamaArch`): every field
    checked, unknown fields refused (a typo must not fall back to a default)."""
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", data, "a mapping of llama config fields", where)
    for key in data:
        if key not in FIELDS:
            raise ConfigError(str(key), data[key], f"no such field (known: {', '.join(FIELDS)})", where)

    def req(name: str) -> Any:
        return get_field(data, name, where)

    def opt(name: str) -> Any:
        return data.get(name, _DEFAULTS[name])

    hidden = check_int(req("hidden_size"), "hidden_size", 1, where)
    heads = check_heads(check_int(req("num_attention_heads"), "num_attention_heads", 1, where), hidden, where)
    kv = check_int(req("num_key_value_heads"), "num_key_value_heads", 1, where)
    return LlamaArch(
        num_hidden_layers=check_int(req("num_hidden_layers"), "num_hidden_layers", 1, where),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=check_kv_heads(kv, heads, where),
        head_dim=_even_head_dim(req("head_dim"), where),
        intermediate_size=check_int(req("intermediate_size"), "intermediate_size", 1, where),
        tie_word_embeddings=_bool(req("tie_word_embeddings"), "tie_word_embeddings", where),
        tokenizer=check_tokenizer(req("tokenizer"), where),
        max_position_embeddings=check_int(
            opt("max_position_embeddings"), "max_position_embeddings", 1, where
        ),
        rope_theta=_positive_float(opt("rope_theta"), "rope_theta", where),
        rms_norm_eps=_positive_float(opt("rms_norm_eps"), "rms_norm_eps", where),
        initializer_range=_positive_float(opt("initializer_range"), "initializer_range", where),
    )


def _even_head_dim(value: Any, where: str | None) -> int:
    """Rotary positions rotate pairs of channels: the head size must be even."""
    dim = check_int(value, "head_dim", 2, where)
    if dim % 2:
        raise ConfigError(
            "head_dim", value, "an even integer >= 2 (rotary positions rotate channel pairs)", where
        )
    return dim


def tokenizer_of_vocab(vocab: Any, where: str | None = None) -> str:
    """The tokenizer name of a ``config.json``'s ``vocab_size``."""
    for name, tok in TOKENIZERS.items():
        if vocab == tok.vocab_size:
            return name
    known = ", ".join(f"{t.vocab_size} ({k})" for k, t in TOKENIZERS.items())
    raise ConfigError("vocab_size", vocab, f"the vocabulary of a known tokenizer: {known}", where)


def config_from_hf(data: Mapping[str, Any], where: str | None = None) -> LlamaArch:
    """The config of a Llama-family ``config.json`` (parsed). Keys that select something
    this space does not build (biases, a non-SiLU activation, RoPE scaling, tensor-parallel
    slicing) are refused; keys that change nothing here (token ids, dtype) are ignored."""
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", data, "a mapping (a parsed config.json)", where)
    for key, neutral in (
        ("attention_bias", False),
        ("mlp_bias", False),
        ("hidden_act", "silu"),
        ("rope_scaling", None),
        ("pretraining_tp", 1),
        ("layer_sharing", False),
    ):
        if data.get(key, neutral) != neutral:
            raise ConfigError(key, data[key], f"{neutral!r} (the llama space builds no other)", where)
    heads = data.get("num_attention_heads")
    head_dim = data.get("head_dim")
    if head_dim is None and isinstance(heads, int) and heads > 0:
        head_dim = get_field(data, "hidden_size", where) // heads
    rope = data.get("rope_parameters") or {}
    ours = {
        "num_hidden_layers": get_field(data, "num_hidden_layers", where),
        "hidden_size": get_field(data, "hidden_size", where),
        "num_attention_heads": get_field(data, "num_attention_heads", where),
        "num_key_value_heads": data.get("num_key_value_heads", heads),
        "head_dim": head_dim,
        "intermediate_size": get_field(data, "intermediate_size", where),
        "tie_word_embeddings": bool(
            data.get("tie_word_embeddings", False) or data.get("share_embedding", False)
        ),
        "tokenizer": tokenizer_of_vocab(get_field(data, "vocab_size", where), where),
    }
    for key in ("max_position_embeddings", "rms_norm_eps", "initializer_range"):
        if key in data:
            ours[key] = data[key]
    theta = data.get("rope_theta", rope.get("rope_theta") if isinstance(rope, Mapping) else None)
    if theta is not None:
        ours["rope_theta"] = theta
    return config_from_dict(ours, where)


def hf_config_kwargs(arch: LlamaArch) -> dict[str, Any]:
    """The keyword arguments of ``transformers.LlamaConfig`` for ``arch`` (transformers 5:
    RoPE settings in ``rope_parameters``). Token ids stay transformers' defaults."""
    return {
        "vocab_size": arch.vocab_size,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": arch.num_hidden_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_key_value_heads,
        "head_dim": arch.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": arch.max_position_embeddings,
        "initializer_range": arch.initializer_range,
        "rms_norm_eps": arch.rms_norm_eps,
        "tie_word_embeddings": arch.tie_word_embeddings,
        "rope_parameters": {"rope_type": "default", "rope_theta": arch.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "use_cache": True,
    }


# ------------------------------------------------------------------ reference models
@dataclass(frozen=True)
class Reference:
    """A shipped model of the space: its published ``config.json`` fields, where they come
    from, and the total parameter count its authors state (checked by the tests)."""

    name: str
    repo: str
    source: str
    published: Mapping[str, Any]
    stated_params: str


#: The published ``config.json`` fields of the reference models (only those that decide the
#: architecture; token ids, dtype and versions left out). Each was checked against a public
#: copy of the file (``source``); see docs/llama.md.
REFERENCES: dict[str, Reference] = {
    r.name: r
    for r in (
        Reference(
            "SmolLM2-135M",
            "HuggingFaceTB/SmolLM2-135M",
            "https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json",
            {
                "hidden_size": 576,
                "intermediate_size": 1536,
                "num_hidden_layers": 30,
                "num_attention_heads": 9,
                "num_key_value_heads": 3,
                "head_dim": 64,
                "vocab_size": 49152,
                "tie_word_embeddings": True,
                "max_position_embeddings": 8192,
                "rope_theta": 100000,
                "rms_norm_eps": 1e-05,
                "initializer_range": 0.041666666666666664,
                "hidden_act": "silu",
            },
            "134.5M (134,515,008)",
        ),
        Reference(
            "SmolLM2-360M",
            "HuggingFaceTB/SmolLM2-360M",
            "https://huggingface.co/HuggingFaceTB/SmolLM2-360M/blob/main/config.json",
            {
                "hidden_size": 960,
                "intermediate_size": 2560,
                "num_hidden_layers": 32,
                "num_attention_heads": 15,
                "num_key_value_heads": 5,
                "head_dim": 64,
                "vocab_size": 49152,
                "tie_word_embeddings": True,
                "max_position_embeddings": 8192,
                "rope_theta": 100000,
                "rms_norm_eps": 1e-05,
                "initializer_range": 0.02,
                "hidden_act": "silu",
            },
            "361.8M (361,821,120)",
        ),
        Reference(
            "MobileLLM-125M",
            "facebook/MobileLLM-125M",
            "https://huggingface.co/facebook/MobileLLM-125M/blob/main/config.json",
            {
                "hidden_size": 576,
                "intermediate_size": 1536,
                "num_hidden_layers": 30,
                "num_attention_heads": 9,
                "num_key_value_heads": 3,
                "head_dim": 64,
                "vocab_size": 32000,
                "tie_word_embeddings": False,
                "share_embedding": True,
                "max_position_embeddings": 2048,
                "rope_theta": 10000.0,
                "rms_norm_eps": 1e-05,
                "initializer_range": 0.02,
                "hidden_act": "silu",
            },
            "124.6M",
        ),
        Reference(
            "MobileLLM-350M",
            "facebook/MobileLLM-350M",
            "https://huggingface.co/facebook/MobileLLM-350M/blob/main/config.json",
            {
                "hidden_size": 960,
                "intermediate_size": 2560,
                "num_hidden_layers": 32,
                "num_attention_heads": 15,
                "num_key_value_heads": 5,
                "head_dim": 64,
                "vocab_size": 32000,
                "tie_word_embeddings": False,
                "share_embedding": True,
                "max_position_embeddings": 2048,
                "rope_theta": 10000.0,
                "rms_norm_eps": 1e-05,
                "initializer_range": 0.02,
                "hidden_act": "silu",
            },
            "345.3M",
        ),
        Reference(
            "TinyLlama-1.1B",
            "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
            "https://huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0/blob/main/config.json",
            {
                "hidden_size": 2048,
                "intermediate_size": 5632,
                "num_hidden_layers": 22,
                "num_attention_heads": 32,
                "num_key_value_heads": 4,
                "vocab_size": 32000,
                "tie_word_embeddings": False,
                "max_position_embeddings": 2048,
                "rope_theta": 10000.0,
                "rms_norm_eps": 1e-05,
                "initializer_range": 0.02,
                "hidden_act": "silu",
            },
            "1.1B (1,100,048,384)",
        ),
    )
}


def reference_config(name: str) -> LlamaArch:
    """The config of reference model ``name`` (one of :data:`REFERENCES`)."""
    if name not in REFERENCES:
        raise ConfigError("reference", name, f"one of {list(REFERENCES)}")
    ref = REFERENCES[name]
    return config_from_hf(ref.published, where=f"reference {name}")
