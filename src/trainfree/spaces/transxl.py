"""LTS heterogeneous Transformer-XL (NVIDIA/archai ``MemTransformerLM``, flex variant).

Post-LayerNorm layers with relative positional attention ("RelPartialLearnable", Dai et al.
2019), per-layer head counts and feed-forward widths, segment-level memory, an adaptive
input embedding and a tied projected adaptive log-softmax; the model is in ``transxl_model.py``.

Published parameter buckets (``params_summary.yaml``), reproduced by
:meth:`TransXLSpace.param_counts` for all 314 Transformer-XL benchmark models:

- ``AdaEmb`` (our ``embedding``) = the adaptive embedding (no learned positions);
- ``Attn`` (``attention``) = attention modules *with* their post-attention LayerNorm,
  ``sum_i (5 d H_i + 2 d)`` with ``H_i = n_head[i] * d_head[i]``;
- ``FFN`` (``ffn``) = the ``CoreNet`` only, ``sum_i (2 d f_i + f_i + d)``;
- ``nonembedding`` (``decoder``) = ``Attn + FFN + 4 d L``: every LayerNorm, the attention
  ones counted a second time, and the relative-position biases ``r_w_bias``/``r_r_bias``
  left out. Numerically equal to ``total - AdaEmb - softmax_own`` whenever ``H_i = d``
  (every published config); the published definition is kept for the others;
- ``total`` = every distinct parameter.

Our ``norm`` bucket holds the feed-forward LayerNorms (``2 d L``) and ``other`` the biases
(``sum_i 2 H_i``), so ``embedding + attention + ffn + norm + head + other == total``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from trainfree.spaces import register_space
from trainfree.spaces.base import BenchmarkSource, ParamCounts
from trainfree.spaces.lts import (
    ARCH_VALUES,
    LTSSpace,
    adaptive_embedding_flops,
    adaptive_embedding_params,
    adaptive_softmax_flops,
    softmax_own_params,
)
from trainfree.spaces.lts_config import LTSConfig
from trainfree.spaces.transxl_model import TransXLLM


@register_space("transxl")
class TransXLSpace(LTSSpace):
    """LiteTransformerSearch's heterogeneous Transformer-XL (per-layer heads and FF widths).

    Default settings: the wt103 vocabulary (267736 tokens, cutoffs
    ``[19997, 39997, 199997, 267736]``), ``tgt_len = mem_len = 192``, head projection untied.
    """

    dialect = "transxl"
    model_class = TransXLLM
    setting_genes = ("n_token", "cutoffs", "tgt_len", "tie_projs", "mem_len")
    default_values: ClassVar[dict[str, tuple[Any, ...]]] = {
        **ARCH_VALUES,
        "n_token": (267736,),
        "cutoffs": ((19997, 39997, 199997, 267736),),
        "tgt_len": (192,),
        "tie_projs": ("untie_head",),
        "mem_len": (192,),
    }
    benchmark = BenchmarkSource(
        title="LiteTransformerSearch Transformer-XL (WikiText-103)",
        path="lts/random_TransXL_wt103",
        reader="archai",
        targets=("valid_ppl", "test_ppl"),
        higher_is_better=False,
    )

    def param_counts(self, config: LTSConfig) -> ParamCounts:
        """Analytic counts (see the module docstring for the bucket definitions)."""
        d, L = config.d_model, config.n_layer
        widths = [h * e for h, e in zip(config.n_head, config.d_head, strict=True)]  # H_i
        embedding = adaptive_embedding_params(config)
        attention = sum(5 * d * H + 2 * d for H in widths)
        ffn = sum(2 * d * f + f + d for f in config.d_inner)
        norm = 2 * d * L
        other = sum(2 * H for H in widths)
        head = softmax_own_params(config)
        return ParamCounts(
            embedding=embedding,
            attention=attention,
            ffn=ffn,
            norm=norm,
            head=head,
            other=other,
            decoder=attention + ffn + 4 * d * L,
            total=embedding + attention + ffn + norm + head + other,
        )

    def flops(self, config: LTSConfig, seq_len: int) -> int:
        """Forward FLOPs of one segment of ``seq_len`` tokens without memory (keys ``K = T``)
        giving full log-probabilities.

        2 x multiply-accumulates of every matrix product: adaptive input projections (each
        token counted in the head cluster), per layer ``qkv_net`` (``3 T d H``), ``r_net`` on
        the ``K`` positions (``K d H``), content scores, position scores and ``prob V``
        (``T K H`` each; masked entries are computed too), ``o_net`` (``T H d``), the
        feed-forward net (``2 T d f_i``), and the adaptive softmax over the whole vocabulary.
        Element-wise work (LayerNorm, softmax, ReLU, biases, rel-shift) is ignored.
        """
        T = K = seq_len
        d = config.d_model
        macs = 0
        for h, e, f in zip(config.n_head, config.d_head, config.d_inner, strict=True):
            H = h * e
            macs += 3 * T * d * H + K * d * H + 3 * T * K * H + T * H * d + 2 * T * d * f
        return 2 * macs + adaptive_embedding_flops(config, T) + adaptive_softmax_flops(config, T)

    def cost_features(self, config: LTSConfig, batch_size: int, seq_len: int) -> dict[str, float]:
        """The generic features, with the FLOPs split by kind of work (large matrix products,
        the ``T x K`` attention products, the adaptive softmax) and the element-wise work that
        FLOPs leave out: LayerNorms and residuals (``T d`` per layer), ReLU (``T f_i``), and
        the attention softmax and relative shift (``T K`` per head)."""
        B, T, d = batch_size, seq_len, config.d_model
        K = T
        linear = attention = 0
        for h, e, f in zip(config.n_head, config.d_head, config.d_inner, strict=True):
            H = h * e
            linear += 3 * T * d * H + K * d * H + T * H * d + 2 * T * d * f
            attention += 3 * T * K * H
        out = super().cost_features(config, batch_size, seq_len)
        out.update(
            linear_flops=float(B * 2 * linear),
            attention_flops=float(B * 2 * attention),
            head_flops=float(B * (adaptive_embedding_flops(config, T) + adaptive_softmax_flops(config, T))),
            elementwise=float(B * T * (4 * d * config.n_layer + sum(config.d_inner))),
            softmax=float(B * 2 * T * K * sum(config.n_head)),
        )
        return out
