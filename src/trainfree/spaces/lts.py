"""The search-space base of the two LiteTransformerSearch (LTS) spaces, GPT-2 and Transformer-XL.

LTS (Javaheripi et al., NeurIPS 2022) trained heterogeneous decoder-only language models
whose layers each pick their own head count and feed-forward width. Both model families
share the input and output layers: an *adaptive input embedding* (Baevski & Auli, 2019) and
a *projected adaptive log-softmax* (Grave et al., 2017) whose weight tables are the
embedding's. What the two spaces have in common is spread over three files:

- ``lts_config.py``: :class:`LTSConfig`, the resolved, hashable config both spaces use, and its
  readers (:func:`config_from_archai` for archai's ``model_config.yaml``,
  :func:`config_from_dict` for our JSON form);
- ``lts_model.py``: :class:`AdaptiveEmbedding` and :class:`ProjectedAdaptiveLogSoftmax`;
- this file: the analytic counts of those two modules (:func:`adaptive_embedding_params`,
  :func:`softmax_own_params`) and their FLOPs, and :class:`LTSSpace`, the space base class
  with the shared genome and ``build``.

The counts reproduce every published LTS count (``params_summary.yaml``). With clusters
``(lo_i, hi_i, d_i)`` (``d_i = d_embed // div_val**i``, or ``d_embed`` for all when
``div_val = 1``): the adaptive embedding holds ``n_token * d_embed`` (+ ``d_model * d_embed``
when ``d_embed != d_model``) for ``div_val = 1``, else ``sum_i (hi_i - lo_i) d_i + d_model d_i``;
the tied softmax owns ``(K - 1)(d_embed + 1) + n_token`` (cluster weights and biases, output
biases) plus ``d_model d_i`` for each untied projection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from trainfree.errors import ConfigError
from trainfree.spaces.base import MAX_LAYERS, Gene, SearchSpace, seeded
from trainfree.spaces.lts_config import (
    INIT_TYPES,
    LTSConfig,
    clean_cutoffs,
    config_from_archai,
    config_from_dict,
)
from trainfree.spaces.lts_model import AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax, init_weight_

# ============================================================ analytic counts


def adaptive_embedding_params(c: LTSConfig) -> int:
    """Parameters of :class:`AdaptiveEmbedding` (tables and input projections)."""
    if c.div_val == 1:
        return c.n_token * c.d_embed + (c.d_model * c.d_embed if c.d_embed != c.d_model else 0)
    return sum((hi - lo) * w + c.d_model * w for lo, hi, w in c.clusters())


def softmax_own_params(c: LTSConfig) -> int:
    """Parameters the tied adaptive softmax owns: cluster weights and biases, every output
    bias, and the projections of clusters with ``tie_projs`` false."""
    k = c.n_clusters
    own = (k - 1) * (c.d_embed + 1) + c.n_token
    if c.has_projections():
        own += sum(
            c.d_model * w for (_, _, w), tied in zip(c.clusters(), c.tie_projs, strict=True) if not tied
        )
    return own


def adaptive_embedding_flops(c: LTSConfig, seq_len: int) -> int:
    """2 x MACs of the input projections, counting every token as a head-cluster token (the
    widest, and by far the most frequent, cluster; lookups cost nothing)."""
    if not c.has_projections():
        return 0
    return 2 * seq_len * c.d_model * c.d_embed


def adaptive_softmax_flops(c: LTSConfig, seq_len: int) -> int:
    """2 x MACs of full log-probabilities: every cluster (head and all tails) for every token,
    projection ``d_model x d_i`` (if any) plus logits ``n_i x d_i`` (head: ``r_0 + K - 1``)."""
    macs = 0
    for i, (lo, hi, w) in enumerate(c.clusters()):
        rows = hi - lo + (c.n_clusters - 1 if i == 0 else 0)
        macs += (c.d_model * w if c.has_projections() else 0) + rows * w
    return 2 * seq_len * macs


# ====================================================================== space

TIE_MODES = ("untie_head", "untie_all", "tie_all")

#: Architecture value sets shared by both spaces (they span both benchmarks' Pareto sets;
#: the random sets' d_inner values are arbitrary integers in 512..2048).
ARCH_VALUES: dict[str, tuple[Any, ...]] = {
    "n_layer": tuple(range(2, 17)),
    "d_model": tuple(range(64, 1025, 64)),
    "d_embed": (-1, 128, 256, 512, 1024),
    "div_val": (1, 2, 4),
    "d_inner": tuple(range(256, 4097, 64)),
    "n_head": (2, 4, 8),
}


def tie_projs_for(mode: str, k: int) -> tuple[bool, ...]:
    """``untie_head`` = ``[F, T, T, ...]`` (random sets), ``untie_all`` (Pareto sets), ``tie_all``."""
    if mode == "untie_head":
        return (False,) + (True,) * (k - 1)
    if mode == "untie_all":
        return (False,) * k
    if mode == "tie_all":
        return (True,) * k
    raise ConfigError("tie_projs", mode, f"one of {list(TIE_MODES)}")


class LTSSpace(SearchSpace[LTSConfig]):
    """Search-space base of the two LTS spaces: config I/O, genome, ``build``.

    Genome: ``n_layer``, ``d_model``, ``d_embed`` (``-1`` = same as ``d_model``), ``div_val``,
    then per layer slot ``layers[i].d_inner`` and ``layers[i].n_head`` (as many slots as the
    largest ``n_layer``), then the settings ``n_token``, ``cutoffs`` (cleaned tuples; cleaned
    again against ``n_token`` on decode), ``tgt_len``, ``tie_projs`` (a mode of
    :data:`TIE_MODES`) and, for Transformer-XL, ``mem_len``. The settings are single-valued
    by default (so never mutated); pass e.g. ``n_token=[267735]``,
    ``cutoffs=[[59997, 99997, 267735]]``, ``tgt_len=[32]``, ``tie_projs=["untie_all"]`` to
    describe the LM1B Pareto models. Training settings (dropout, init) are not genes: decoded
    configs take the :class:`LTSConfig` defaults (dropout 0.1, dropatt 0, N(0, 0.02) init).
    """

    #: archai config dialect read by :meth:`config_from_benchmark`.
    dialect: ClassVar[str] = "transxl"
    #: genes that are settings, after the architecture genes.
    setting_genes: ClassVar[tuple[str, ...]] = ("n_token", "cutoffs", "tgt_len", "tie_projs")
    #: the ``nn.Module`` class that :meth:`build` instantiates with the config.
    model_class: ClassVar[type[nn.Module]]

    # --------------------------------------------------------------- configs
    def config_from_dict(self, data: Mapping[str, Any], where: str | None = None) -> LTSConfig:
        config = config_from_dict(data, where)
        self.check_config(config, where)
        return config

    def config_from_benchmark(self, d: Mapping[str, Any], where: str | None = None) -> LTSConfig:
        """The config of an archai ``model_config.yaml`` (parsed), see :func:`config_from_archai`."""
        config = config_from_archai(d, where, dialect=self.dialect)
        self.check_config(config, where)
        return config

    # ---------------------------------------------------------------- genome
    @property
    def n_slots(self) -> int:
        return max(self.values["n_layer"])

    def genes(self) -> list[Gene]:
        self._check_values()
        values = self.values
        genes = [Gene(k, values[k]) for k in ("n_layer", "d_model", "d_embed", "div_val")]
        for i in range(self.n_slots):
            genes.append(Gene(f"layers[{i}].d_inner", values["d_inner"]))
            genes.append(Gene(f"layers[{i}].n_head", values["n_head"]))
        genes += [Gene(k, values[k]) for k in self.setting_genes]
        return genes

    def _check_values(self) -> None:
        """Every value of every value set has the right type and range, and every
        combination the genome can form builds (heads divide widths, clusters keep a width)."""
        where = f"space {self.name}"
        self.int_values("n_layer", 1, MAX_LAYERS)
        d_models = self.int_values("d_model", 1)
        d_embeds = self.int_values("d_embed", 1, also=(-1,))
        div_vals = self.int_values("div_val", 1)
        self.int_values("d_inner", 1)
        heads = self.int_values("n_head", 1)
        tokens = self.int_values("n_token", 2)
        self.int_values("tgt_len", 1)
        if "mem_len" in self.values:
            self.int_values("mem_len", 0)
        for mode in self.values["tie_projs"]:
            if not isinstance(mode, str) or mode not in TIE_MODES:
                raise ConfigError("tie_projs", mode, f"one of {list(TIE_MODES)}", where)
        for d in d_models:
            for h in heads:
                if d % h:
                    raise ConfigError("n_head", h, f"a divisor of every d_model value ({d} is not)", where)
        cutoffs = []
        for raw in self.values["cutoffs"]:
            for n_token in tokens:
                k = len(clean_cutoffs(raw, n_token, where))
                widths = {d for d in d_embeds if d > 0} | ({*d_models} if -1 in d_embeds else set())
                for div_val in (v for v in div_vals if v > 1):
                    narrow = min(widths)
                    if narrow // div_val ** (k - 1) < 1:
                        raise ConfigError(
                            "div_val",
                            div_val,
                            f"small enough that all {k} clusters of cutoffs {list(raw)} keep a width "
                            f">= 1 (d_embed {narrow} // div_val**{k - 1})",
                            where,
                        )
            cutoffs.append(tuple(int(x) for x in raw))
        self.values["cutoffs"] = tuple(cutoffs)

    def to_genes(self, config: LTSConfig) -> list[Any]:
        if config.n_layer > self.n_slots:
            raise ConfigError("n_layer", config.n_layer, f"at most {self.n_slots} (the space's value set)")
        d_embed = config.d_embed
        if d_embed not in self.values["d_embed"] and d_embed == config.d_model:
            d_embed = -1
        out: list[Any] = [config.n_layer, config.d_model, d_embed, config.div_val]
        for i in range(self.n_slots):
            j = min(i, config.n_layer - 1)  # unused slots repeat the last layer
            out += [config.d_inner[j], config.n_head[j]]
        k = config.n_clusters
        modes = (*self.values["tie_projs"], *TIE_MODES)  # with one cluster several modes agree
        mode = next((m for m in modes if tie_projs_for(m, k) == config.tie_projs), config.tie_projs)
        # the value set holds cutoffs as given; a config holds them cleaned against its n_token
        cutoffs = next(
            (c for c in self.values["cutoffs"] if clean_cutoffs(c, config.n_token) == config.cutoffs),
            config.cutoffs,
        )
        settings = {
            "n_token": config.n_token,
            "cutoffs": cutoffs,
            "tgt_len": config.tgt_len,
            "tie_projs": mode,
            "mem_len": config.mem_len,
        }
        return out + [settings[k] for k in self.setting_genes]

    def from_genes(self, values: Sequence[Any]) -> LTSConfig:
        names = [g.name for g in self._genes]
        v = dict(zip(names, values, strict=True))
        n_layer, d_model = int(v["n_layer"]), int(v["d_model"])
        n_head = tuple(int(v[f"layers[{i}].n_head"]) for i in range(n_layer))
        cutoffs = clean_cutoffs(v["cutoffs"], int(v["n_token"]))
        data = {
            "n_token": v["n_token"],
            "n_layer": n_layer,
            "d_model": d_model,
            "n_head": n_head,
            "d_head": tuple(d_model // h for h in n_head),
            "d_inner": tuple(int(v[f"layers[{i}].d_inner"]) for i in range(n_layer)),
            "d_embed": d_model if v["d_embed"] == -1 else v["d_embed"],
            "div_val": v["div_val"],
            "cutoffs": cutoffs,
            "tie_projs": tie_projs_for(v["tie_projs"], len(cutoffs)),
            "tgt_len": v["tgt_len"],
        }
        if "mem_len" in v:
            data["mem_len"] = v["mem_len"]
        return self.config_from_dict(data)

    # ---------------------------------------------------------------- models
    def build(
        self, config: LTSConfig, seed: int | None = 0, device: str | torch.device | None = None
    ) -> nn.Module:
        """Build on the meta device, then (unless ``device`` is meta) allocate and initialise.

        Building on meta first skips PyTorch's default initialisation, which the authors'
        init would overwrite anyway (docs/benchmarks.md, "Model build time", says what that
        saves). ``to_empty`` gives every tensor its own storage, so the weight tying is redone
        before the init.
        """
        if not isinstance(config, LTSConfig):
            raise TypeError(f"expected an LTSConfig, got {type(config).__name__}")
        self.check_config(config)
        with torch.device("meta"):
            model = self.model_class(config)
        device = torch.device("cpu" if device is None else device)
        if device.type == "meta":
            return model
        model.to_empty(device=device)
        model.tie_weights()
        with seeded(seed):
            model.reset_parameters()
        return model

    def vocab_size(self, config: LTSConfig) -> int:
        return config.n_token

    def max_seq_len(self, config: LTSConfig) -> int:
        return config.tgt_len

    def inference(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states *and* the adaptive softmax: ``[B, T, n_token]`` log-probabilities."""
        return model.log_probs(input_ids)


# the config readers and modules stay importable from here, where they used to live
__all__ = [
    "ARCH_VALUES",
    "INIT_TYPES",
    "TIE_MODES",
    "AdaptiveEmbedding",
    "LTSConfig",
    "LTSSpace",
    "ProjectedAdaptiveLogSoftmax",
    "adaptive_embedding_flops",
    "adaptive_embedding_params",
    "adaptive_softmax_flops",
    "clean_cutoffs",
    "config_from_archai",
    "config_from_dict",
    "init_weight_",
    "softmax_own_params",
    "tie_projs_for",
]
