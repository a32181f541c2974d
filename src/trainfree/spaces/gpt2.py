"""LTS heterogeneous GPT-2 ("HfGPT2Flex" in archai), as trained by LiteTransformerSearch.

The model is in ``gpt2_model.py``. Published parameter buckets (``params_summary.yaml``),
which :meth:`GPT2Space.param_counts` reproduces for all 322 GPT-2 benchmark models:

- ``AdaEmb`` (our ``embedding``) = adaptive embedding + the learned position table
  ``tgt_len x d_model``;
- ``Attn`` (``attention``) = ``L (4 d^2 + 4 d)`` (the width is always ``d``, so ``n_head``
  does not change the count);
- ``FFN`` (``ffn``) = ``sum_i (2 d f_i + f_i + d)``;
- ``nonembedding`` (``decoder``) = ``Attn + FFN`` + all LayerNorms ``(4 L + 2) d``;
- ``total`` = ``AdaEmb + nonembedding + softmax_own`` (untied softmax parameters, our ``head``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from trainfree.errors import ConfigError
from trainfree.spaces import register_space
from trainfree.spaces.base import BenchmarkSource, ParamCounts
from trainfree.spaces.gpt2_model import GPT2LM, KVCache
from trainfree.spaces.lts import (
    ARCH_VALUES,
    LTSSpace,
    adaptive_embedding_flops,
    adaptive_embedding_params,
    adaptive_softmax_flops,
    softmax_own_params,
)
from trainfree.spaces.lts_config import LTSConfig


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
    benchmark = BenchmarkSource(
        title="LiteTransformerSearch GPT-2 (WikiText-103)",
        path="lts/random_GPT2_wt103",
        reader="archai",
        targets=("valid_ppl", "test_ppl"),
        higher_is_better=False,
    )

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

    # ------------------------------------------------------------ generation
    def new_cache(self, model: Any) -> KVCache:
        return KVCache()

    def cached_step(self, model: Any, input_ids: Any, cache: KVCache) -> Any:
        """Read ``input_ids`` after the cached tokens: the log-probabilities of the next token
        ``[B, n_token]`` (the whole adaptive softmax, as generation samples from it)."""
        hidden = model(input_ids, cache)
        return model.head.log_prob(hidden[:, -1])

    def crop_cache(self, cache: KVCache, length: int) -> None:
        cache.crop(length)

    def kv_cache_mb(
        self, config: LTSConfig, context: int, batch_size: int = 1, bytes_per_value: int = 4
    ) -> float:
        """Keys and values of every layer: ``2 L d`` values per token (``h_i e_i = d``)."""
        return 2 * config.n_layer * config.d_model * context * batch_size * bytes_per_value / 2**20

    def decode_flops(self, config: LTSConfig, context: int) -> int:
        """One generated token at ``context``: the projections, attention over ``context``
        keys, and the full adaptive softmax of that token."""
        d = config.d_model
        macs = sum(4 * d * d + 2 * context * d + 2 * d * f for f in config.d_inner)
        return 2 * macs + adaptive_embedding_flops(config, 1) + adaptive_softmax_flops(config, 1)

    def prefill_flops(self, config: LTSConfig, prompt_len: int) -> int:
        """A ``prompt_len``-token prompt into the cache, log-probabilities of its last token."""
        T, d = prompt_len, config.d_model
        macs = sum(4 * T * d * d + 2 * T * T * d + 2 * T * d * f for f in config.d_inner)
        return 2 * macs + adaptive_embedding_flops(config, T) + adaptive_softmax_flops(config, 1)

    def generation_features(
        self, config: LTSConfig, batch_size: int, prompt_len: int, context: int
    ) -> dict[str, float]:
        """As the llama space's: a decode step's weights, layers, attention and cache at the
        context; the prefill's FLOPs by kind."""
        B, P, C, d, L = batch_size, prompt_len, context, config.d_model, config.n_layer
        return {
            "params": float(self.param_counts(config).total),
            "layers": float(L),
            "decode_flops": float(B * self.decode_flops(config, C)),
            "decode_attention_flops": float(B * 2 * 2 * C * d * L),
            "kv_cache_bytes": float(self.kv_cache_mb(config, C, B) * 2**20),
            "prefill_linear_flops": float(B * 2 * sum(4 * P * d * d + 2 * P * d * f for f in config.d_inner)),
            "prefill_attention_flops": float(B * 2 * 2 * P * P * d * L),
            "head_flops": float(B * adaptive_softmax_flops(config, 1)),
            "prefill_elementwise": float(B * P * (4 * d * L + sum(config.d_inner))),
            "prefill_softmax": float(B * P * P * sum(config.n_head)),
        }

    def cost_features(self, config: LTSConfig, batch_size: int, seq_len: int) -> dict[str, float]:
        """The generic features, with the FLOPs split by kind of work (large matrix products,
        attention's ``T x T`` products, the adaptive softmax) and the element-wise work that
        FLOPs leave out: LayerNorms and residuals (``T d`` per layer), GELU (``T f_i``) and
        the attention softmax (``T^2`` per head)."""
        B, T, d = batch_size, seq_len, config.d_model
        out = super().cost_features(config, batch_size, seq_len)
        out.update(
            linear_flops=float(B * 2 * sum(4 * T * d * d + 2 * T * d * f for f in config.d_inner)),
            attention_flops=float(B * 2 * 2 * T * T * d * config.n_layer),
            head_flops=float(B * (adaptive_embedding_flops(config, T) + adaptive_softmax_flops(config, T))),
            elementwise=float(B * T * (4 * d * config.n_layer + sum(config.d_inner))),
            softmax=float(B * T * T * sum(config.n_head)),
        )
        return out
