"""The ``llama`` space: the decoders people ship (SmolLM2, MobileLLM, TinyLlama, Llama 3.2).

Every config is a stock transformers ``LlamaConfig`` and every model a ``LlamaForCausalLM``
(``_llama_model.py``): grouped-query attention, SwiGLU, RMSNorm, rotary positions, tied or
untied embeddings. Searched: layers, hidden size, attention heads, KV heads, head size, the
SwiGLU width, tying and the tokenizer (which decides the vocabulary). Why each choice, the
reference models and their sources: docs/llama.md.

Analytic counts (``L`` layers, ``d`` hidden, ``q = heads x head_dim``, ``k = kv_heads x
head_dim``, ``f`` SwiGLU width, ``V`` vocabulary), equal to ``num_parameters()`` of the built
model: ``embedding = V d``; ``attention = L (2 d q + 2 d k)`` (q/o and k/v projections, no
biases); ``ffn = 3 L d f`` (gate, up, down); ``norm = (2 L + 1) d``; ``head = V d`` when untied,
else 0; ``decoder = attention + ffn + norm`` (everything but the token table and the head).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from trainfree.errors import ConfigError, TrainfreeError
from trainfree.spaces import register_space
from trainfree.spaces.base import MAX_LAYERS, Gene, ParamCounts, SearchSpace
from trainfree.spaces.llama_config import (
    REFERENCES,
    TOKENIZERS,
    LlamaArch,
    check_heads,
    check_kv_heads,
    check_tokenizer,
    config_from_dict,
    config_from_hf,
    reference_config,
)

MB = 1024.0 * 1024.0
ARCH_GENES = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "tie_word_embeddings",
    "tokenizer",
)
SETTING_GENES = ("max_position_embeddings",)


def divisor_at_most(n: int, cap: int) -> int:
    """The largest divisor of ``n`` not above ``cap``: how a gene value for the heads (of
    ``hidden_size``) or the KV heads (of the heads) decodes, so that any pair of genes gives
    a config transformers accepts."""
    return max(d for d in range(1, min(cap, n) + 1) if n % d == 0)


def linear_macs(c: LlamaArch) -> int:
    """Multiply-accumulates of one token through one layer's projections (q, k, v, o, SwiGLU)."""
    d = c.hidden_size
    return 2 * d * c.q_width + 2 * d * c.kv_width + 3 * d * c.intermediate_size


def kv_cache_bytes(c: LlamaArch, context: int, batch_size: int = 1, bytes_per_value: int = 4) -> int:
    """Keys and values of every layer for ``context`` tokens: transformers' ``DynamicCache``
    holds exactly these tensors, ``[B, kv_heads, C, head_dim]`` twice per layer (float32)."""
    return 2 * c.num_hidden_layers * batch_size * c.kv_width * context * bytes_per_value


def _gene_for(value: int, whole: int, choices: tuple[int, ...]) -> int:
    """A gene value that decodes to ``value`` (a divisor of ``whole``): ``value`` itself when
    the value set has it, else the first that decodes to it, else ``value`` (refused by
    ``encode``: a config from outside the value sets)."""
    if value in choices:
        return value
    return next((v for v in choices if divisor_at_most(whole, v) == value), value)


@register_space("llama")
class LlamaSpace(SearchSpace[LlamaArch]):
    """Llama-family decoders as people ship them (grouped-query attention, SwiGLU, RMSNorm,
    rotary positions, tied or untied embeddings), built as stock transformers LlamaForCausalLM.
    No public benchmark of trained models exists for this space.

    Reference models (SmolLM2-135M/-360M, MobileLLM-125M/-350M, TinyLlama-1.1B) are configs of
    the space (:meth:`references`); every one of them lies in the default value sets.
    """

    default_values: ClassVar[dict[str, tuple[Any, ...]]] = {
        "num_hidden_layers": (2, 4, 6, 8, 12, 16, 22, 30, 32),
        "hidden_size": (128, 256, 384, 512, 576, 768, 960, 1024, 1536, 2048),
        "num_attention_heads": (2, 4, 8, 9, 12, 15, 16, 32),
        "num_key_value_heads": (1, 2, 3, 4, 5, 8),
        "head_dim": (32, 64, 128),
        "intermediate_size": (256, 512, 1024, 1536, 2048, 2560, 3072, 4096, 5632),
        "tie_word_embeddings": (True, False),
        "tokenizer": tuple(TOKENIZERS),
        "max_position_embeddings": (2048,),
    }
    #: the label-free zerolm balance is GPT-2's, carried over (``proxies.balance``): the
    #: nearest space with trained models (a decoder-only causal LM); docs/llama.md says why
    balance_carried_from: ClassVar[str] = "gpt2"

    # --------------------------------------------------------------- configs
    def config_from_dict(self, data: Mapping[str, Any], where: str | None = None) -> LlamaArch:
        config = config_from_dict(data, where)
        self.check_config(config, where)
        return config

    def config_from_hf(self, data: Mapping[str, Any], where: str | None = None) -> LlamaArch:
        """The config of a Llama-family ``config.json`` (see ``llama_config.config_from_hf``)."""
        config = config_from_hf(data, where)
        self.check_config(config, where)
        return config

    def check_config(self, config: LlamaArch, where: str | None = None) -> None:
        """Rules beyond one field: the heads divide the hidden size (transformers' LlamaConfig
        refuses anything else), the KV heads divide the heads, the tokenizer is known, the head
        size is even."""
        check_heads(config.num_attention_heads, config.hidden_size, where)
        check_kv_heads(config.num_key_value_heads, config.num_attention_heads, where)
        check_tokenizer(config.tokenizer, where)
        if config.head_dim < 2 or config.head_dim % 2:
            raise ConfigError("head_dim", config.head_dim, "an even integer >= 2", where)

    def references(self) -> dict[str, LlamaArch]:
        """The shipped reference models, by name (``llama_config.REFERENCES``)."""
        return {name: reference_config(name) for name in REFERENCES}

    # ---------------------------------------------------------------- genome
    def genes(self) -> list[Gene]:
        self._check_values()
        return [Gene(k, self.values[k]) for k in (*ARCH_GENES, *SETTING_GENES)]

    def _check_values(self) -> None:
        """Types and ranges of every value set (any combination then decodes and builds)."""
        where = f"space {self.name} value set"
        self.int_values("num_hidden_layers", 1, MAX_LAYERS)
        for key in ("hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size"):
            self.int_values(key, 1)
        for dim in self.int_values("head_dim", 2):
            if dim % 2:
                raise ConfigError("head_dim", dim, "an even integer (rotary positions rotate pairs)", where)
        self.int_values("max_position_embeddings", 1)
        for tie in self.values["tie_word_embeddings"]:
            if not isinstance(tie, bool):
                raise ConfigError("tie_word_embeddings", tie, "true or false", where)
        for name in self.values["tokenizer"]:
            check_tokenizer(name, where)

    def to_genes(self, config: LlamaArch) -> list[Any]:
        values = {f: getattr(config, f) for f in (*ARCH_GENES, *SETTING_GENES)}
        # gene values that decode to this config's heads and KV heads (themselves if in the sets)
        values["num_attention_heads"] = _gene_for(
            config.num_attention_heads, config.hidden_size, self.values["num_attention_heads"]
        )
        values["num_key_value_heads"] = _gene_for(
            config.num_key_value_heads, config.num_attention_heads, self.values["num_key_value_heads"]
        )
        return [values[k] for k in (*ARCH_GENES, *SETTING_GENES)]

    def from_genes(self, values: Sequence[Any]) -> LlamaArch:
        v = dict(zip([g.name for g in self._genes], values, strict=True))
        data = {k: v[k] for k in (*ARCH_GENES, *SETTING_GENES)}
        heads = divisor_at_most(int(v["hidden_size"]), int(v["num_attention_heads"]))
        data["num_attention_heads"] = heads
        data["num_key_value_heads"] = divisor_at_most(heads, int(v["num_key_value_heads"]))
        return self.config_from_dict(data)

    # ---------------------------------------------------------------- models
    def build(
        self, config: LlamaArch, seed: int | None = 0, device: str | torch.device | None = None
    ) -> nn.Module:
        """A stock ``LlamaForCausalLM`` (``_llama_model.LlamaLM``), initialised as transformers
        initialises Llama; ``device="meta"`` builds the structure only."""
        if not isinstance(config, LlamaArch):
            raise TypeError(f"expected a LlamaArch, got {type(config).__name__}")
        self.check_config(config)
        try:
            from trainfree.spaces._llama_model import build_llama
        except ImportError as exc:  # transformers is the optional [hf] extra
            raise TrainfreeError(
                f"the llama space builds transformers' LlamaForCausalLM: pip install 'trainfree[hf]' ({exc})"
            ) from None
        return build_llama(config, seed, device)

    def small_twin(self, config: LlamaArch) -> LlamaArch:
        """A config with the same structure and init laws but tiny widths and two layers, on
        which ``proxies.fastinit`` checks its declared law table against a real build."""
        return LlamaArch(
            num_hidden_layers=2,
            hidden_size=2 * config.num_attention_heads,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            head_dim=4,
            intermediate_size=40,
            tie_word_embeddings=config.tie_word_embeddings,
            tokenizer="llama2",
            initializer_range=config.initializer_range,
        )

    def vocab_size(self, config: LlamaArch) -> int:
        return config.vocab_size

    def max_seq_len(self, config: LlamaArch) -> int:
        return config.max_position_embeddings

    def inference(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """One full forward pass without a cache: logits of every position ``[B, T, V]``
        (the forward-pass latency; generation is timed by ``hardware.generation``)."""
        return model(input_ids=input_ids, use_cache=False).logits

    # ------------------------------------------------------------ generation
    def new_cache(self, model: nn.Module) -> Any:
        """An empty transformers ``DynamicCache`` (what ``generate`` uses by default)."""
        from transformers import DynamicCache

        return DynamicCache(config=model.config)

    def cached_step(self, model: nn.Module, input_ids: torch.Tensor, cache: Any) -> torch.Tensor:
        """Read ``input_ids [B, T]`` after the tokens in ``cache`` (which grows by ``T``):
        logits of the last position ``[B, V]``, as ``generate`` computes them."""
        from trainfree.spaces._llama_model import cache_kwarg

        kwargs = {cache_kwarg(type(model)): cache}
        return model(input_ids=input_ids, use_cache=True, logits_to_keep=1, **kwargs).logits[:, -1]

    def crop_cache(self, cache: Any, length: int) -> None:
        """Keep the first ``length`` tokens of ``cache`` (transformers 5: a negative count)."""
        extra = cache.get_seq_length() - length
        if extra > 0:
            cache.crop(-extra)

    # ---------------------------------------------------------------- counts
    def param_counts(self, config: LlamaArch) -> ParamCounts:
        """Analytic counts (module docstring); ``head`` is 0 when the head is the embedding."""
        c, L, d = config, config.num_hidden_layers, config.hidden_size
        embedding = c.vocab_size * d
        attention = L * (2 * d * c.q_width + 2 * d * c.kv_width)
        ffn = L * 3 * d * c.intermediate_size
        norm = (2 * L + 1) * d
        head = 0 if c.tie_word_embeddings else c.vocab_size * d
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

    def flops(self, config: LlamaArch, seq_len: int) -> int:
        """Forward FLOPs of ``seq_len`` tokens with logits for every position: 2 x MACs of the
        projections (``T`` x :func:`linear_macs` per layer), ``Q K^T`` and ``att V`` (``T^2 q``
        each, the full square as for gpt2: SDPA's causal mask skips no work on the CPU) and
        the head (``T d V``). RMSNorm, RoPE, SiLU and softmax are ignored."""
        return self._forward_flops(config, seq_len, logits=seq_len)

    def prefill_flops(self, config: LlamaArch, prompt_len: int) -> int:
        """FLOPs of reading a ``prompt_len``-token prompt into the KV cache: as :meth:`flops`,
        but logits for the last position only (what ``generate`` computes)."""
        return self._forward_flops(config, prompt_len, logits=1)

    def decode_flops(self, config: LlamaArch, context: int) -> int:
        """FLOPs of generating one token at ``context`` tokens (itself included) with the KV
        cache: the projections of one token, attention over ``context`` keys, the head."""
        c = config
        macs = c.num_hidden_layers * (linear_macs(c) + 2 * context * c.q_width) + c.hidden_size * c.vocab_size
        return 2 * macs

    def _forward_flops(self, c: LlamaArch, tokens: int, logits: int) -> int:
        T = tokens
        layer = T * linear_macs(c) + 2 * T * T * c.q_width
        return 2 * (c.num_hidden_layers * layer + logits * c.hidden_size * c.vocab_size)

    def kv_cache_mb(
        self, config: LlamaArch, context: int, batch_size: int = 1, bytes_per_value: int = 4
    ) -> float:
        """The KV cache at ``context`` tokens, in MB (float32 unless said)."""
        return kv_cache_bytes(config, context, batch_size, bytes_per_value) / MB

    def cost_features(self, config: LlamaArch, batch_size: int, seq_len: int) -> dict[str, float]:
        """The generic features of a full forward pass, with the FLOPs split by kind (the
        projections, attention's ``T x T`` products, the head) and the element-wise work
        FLOPs leave out (RMSNorm, RoPE and residuals ``~ T d`` per layer, SwiGLU ``T f``, the
        attention softmax ``T^2`` per head)."""
        c, B, T = config, batch_size, seq_len
        L = c.num_hidden_layers
        out = {
            "flops": float(B * self.flops(c, T)),
            "params": float(self.param_counts(c).total),
            "layers": float(L),
            "tokens": float(B * T),
            "linear_flops": float(B * 2 * T * L * linear_macs(c)),
            "attention_flops": float(B * 2 * 2 * T * T * c.q_width * L),
            "head_flops": float(B * 2 * T * c.hidden_size * c.vocab_size),
            "elementwise": float(B * T * L * (4 * c.hidden_size + c.intermediate_size + c.q_width)),
            "softmax": float(B * T * T * c.num_attention_heads * L),
        }
        return out

    def generation_features(
        self, config: LlamaArch, batch_size: int, prompt_len: int, context: int
    ) -> dict[str, float]:
        """What generation costs follow, for the cost model: per decode step, the weights
        streamed once (``streamed_params``: the decoder and the head's ``V x d``; the input
        embedding is read one row per token, so an untied table is not streamed), the per-layer
        overhead of small steps (``layers``), attention over ``context`` keys and the KV cache
        read (and, in transformers' DynamicCache, copied) at that length; for the prefill, its
        FLOPs by kind. The activation peak follows the cache and the prefill's widths."""
        c, B, P, C = config, batch_size, prompt_len, context
        L, d = c.num_hidden_layers, c.hidden_size
        return {
            "streamed_params": float(self.param_counts(c).decoder + c.vocab_size * d),
            "layers": float(L),
            "decode_flops": float(B * self.decode_flops(c, C)),
            "decode_attention_flops": float(B * 2 * 2 * C * c.q_width * L),
            "kv_cache_bytes": float(kv_cache_bytes(c, C, B)),
            "prefill_linear_flops": float(B * 2 * P * L * linear_macs(c)),
            "prefill_attention_flops": float(B * 2 * 2 * P * P * c.q_width * L),
            "head_flops": float(B * 2 * d * c.vocab_size),
            "prefill_elementwise": float(B * P * L * (4 * d + c.intermediate_size + c.q_width)),
            "prefill_softmax": float(B * P * P * c.num_attention_heads * L),
        }

    def describe(self) -> dict[str, list[Any]]:
        """The value sets, with each tokenizer's vocabulary."""
        out = super().describe()
        out["tokenizer"] = [f"{t} ({TOKENIZERS[t].vocab_size:,})" for t in self.values["tokenizer"]]
        return out


def params_range(space: LlamaSpace) -> tuple[int, int]:
    """The smallest and largest total parameter count the value sets can form (every gene
    is monotone in the count, so the extremes are the extreme values)."""
    counts = []
    for pick in (min, max):
        hidden = pick(space.values["hidden_size"])
        heads = divisor_at_most(hidden, pick(space.values["num_attention_heads"]))
        kv = divisor_at_most(heads, pick(space.values["num_key_value_heads"]))
        vocab = pick(TOKENIZERS[t].vocab_size for t in space.values["tokenizer"])
        tok = next(t for t in space.values["tokenizer"] if TOKENIZERS[t].vocab_size == vocab)
        arch = LlamaArch(
            num_hidden_layers=pick(space.values["num_hidden_layers"]),
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=kv,
            head_dim=pick(space.values["head_dim"]),
            intermediate_size=pick(space.values["intermediate_size"]),
            tie_word_embeddings=pick is min and True in space.values["tie_word_embeddings"],
            tokenizer=tok,
        )
        counts.append(space.param_counts(arch).total)
    return counts[0], counts[1]


__all__ = ["LlamaSpace", "divisor_at_most", "kv_cache_bytes", "linear_macs", "params_range"]
