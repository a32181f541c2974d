"""Parts shared by the two LiteTransformerSearch (LTS) spaces, GPT-2 and Transformer-XL.

LTS (Javaheripi et al., NeurIPS 2022) trained heterogeneous decoder-only language models
whose layers each pick their own head count and feed-forward width. Both model families
share the input and output layers: an *adaptive input embedding* (Baevski & Auli, 2019) and
a *projected adaptive log-softmax* (Grave et al., 2017) whose weight tables are the
embedding's. This module holds what the two spaces have in common:

- :class:`LTSConfig`, the resolved, hashable config both spaces use;
- :func:`config_from_archai` (reads any archai ``model_config.yaml``) and
  :func:`config_from_dict` (validates our own JSON form);
- :class:`AdaptiveEmbedding` and :class:`ProjectedAdaptiveLogSoftmax`;
- the analytic counts of those two modules (:func:`adaptive_embedding_params`,
  :func:`softmax_own_params`) and their FLOPs;
- :class:`LTSSpace`, the search-space base class with the shared genome and ``build``.

Formulas and quirks follow ``specs/adaptive.md``, checked against every published count.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainfree.errors import ConfigError
from trainfree.spaces.base import (
    Gene,
    SearchSpace,
    check_choice,
    check_int,
    check_int_list,
    get_field,
    seeded,
)

# ====================================================================== config


@dataclass(frozen=True)
class LTSConfig:
    """One LTS architecture, fully resolved (no ``-1`` placeholders, cutoffs cleaned).

    Per-layer fields are tuples of length ``n_layer`` so that configs are hashable and compare
    with ``==``. ``cutoffs`` are the cluster *ends* and always finish with ``n_token``
    (``K = len(cutoffs)`` clusters, ``K - 1`` of them tail clusters); ``tie_projs[i]`` says
    whether output cluster ``i`` reuses the input projection of the adaptive embedding.
    GPT-2 uses neither ``d_head`` (always ``d_model // n_head``), ``mem_len`` nor
    ``clamp_len``; its configs keep them at the neutral values so that equal GPT-2
    architectures compare equal.
    """

    n_token: int
    n_layer: int
    d_model: int
    n_head: tuple[int, ...]
    d_head: tuple[int, ...]
    d_inner: tuple[int, ...]
    d_embed: int
    div_val: int
    cutoffs: tuple[int, ...]
    tie_projs: tuple[bool, ...]
    tgt_len: int
    mem_len: int = 0
    clamp_len: int = -1
    dropout: float = 0.1
    dropatt: float = 0.0
    weight_init_type: str = "normal"
    weight_init_std: float = 0.02
    weight_init_range: float = 0.1
    proj_init_std: float = 0.01

    @property
    def n_clusters(self) -> int:
        return len(self.cutoffs)

    def clusters(self) -> list[tuple[int, int, int]]:
        """``(first_token, end_token, width)`` of every cluster, head cluster first."""
        starts = (0, *self.cutoffs[:-1])
        if self.div_val == 1:
            return [(lo, hi, self.d_embed) for lo, hi in zip(starts, self.cutoffs, strict=True)]
        return [
            (lo, hi, self.d_embed // self.div_val**i)
            for i, (lo, hi) in enumerate(zip(starts, self.cutoffs, strict=True))
        ]

    def has_projections(self) -> bool:
        """Whether the clusters map their width to ``d_model`` with a projection matrix.
        With ``div_val > 1`` every cluster has one, even when its width equals ``d_model``."""
        return self.div_val > 1 or self.d_embed != self.d_model


_FIELDS = tuple(f.name for f in dataclasses.fields(LTSConfig))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LTSConfig) if f.default is not dataclasses.MISSING}
INIT_TYPES = ("normal", "uniform")


def clean_cutoffs(
    raw: Any, n_token: int, where: str | None = None, field: str = "cutoffs"
) -> tuple[int, ...]:
    """archai's cutoff cleaning (adaptive.md §2), which decides the number of clusters.

    Walk the list and stop at the first entry, from the second on, that exceeds ``n_token``;
    clamp a last kept entry above ``n_token`` to it, or append ``n_token`` if the last kept
    entry is smaller. So GPT-2 wt103's ``[19997, 39997, 199997, 50264]`` becomes
    ``[19997, 39997, 50264]`` and LM1B's ``[59997, 99997, 639997, 50264]`` becomes ``[50264]``.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError(field, raw, "a list of increasing positive integers (cluster boundaries)", where)
    values = [check_int(v, f"{field}[{i}]", 1, where) for i, v in enumerate(raw)]
    kept: list[int] = []
    for i, v in enumerate(values):
        if i > 0 and v > n_token:
            break
        kept.append(v)
    if any(b <= a for a, b in itertools.pairwise(kept)):
        raise ConfigError(field, list(raw), "strictly increasing cluster boundaries", where)
    if kept and kept[-1] > n_token:
        kept[-1] = n_token
    elif not kept or kept[-1] < n_token:
        kept.append(n_token)
    return tuple(kept)


def config_from_dict(data: Mapping[str, Any], where: str | None = None) -> LTSConfig:
    """Validate our JSON form of an LTS config (the output of ``dataclasses.asdict``).

    Every field is checked before the config is built, and each problem raises a
    :class:`ConfigError` naming the field, the value found and what was expected. Fields
    with a dataclass default (``mem_len`` onwards) may be omitted; unknown fields are refused
    (a typo must not silently fall back to a default).
    """
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", data, "a mapping of LTS config fields", where)
    for key in data:
        if key not in _FIELDS:
            raise ConfigError(str(key), data[key], f"no such field (known: {', '.join(_FIELDS)})", where)

    def req(name: str) -> Any:
        return get_field(data, name, where)

    def opt(name: str) -> Any:
        return data.get(name, _DEFAULTS[name])

    n_token = check_int(req("n_token"), "n_token", 2, where)
    n_layer = check_int(req("n_layer"), "n_layer", 1, where)
    d_model = check_int(req("d_model"), "d_model", 1, where)
    n_head = check_int_list(req("n_head"), "n_head", n_layer, 1, where)
    d_head = check_int_list(req("d_head"), "d_head", n_layer, 1, where)
    d_inner = check_int_list(req("d_inner"), "d_inner", n_layer, 1, where)
    d_embed = check_int(req("d_embed"), "d_embed", 1, where)
    div_val = check_int(req("div_val"), "div_val", 1, where)
    cutoffs = _check_clean_cutoffs(req("cutoffs"), n_token, where)
    k = len(cutoffs)
    if div_val > 1 and d_embed // div_val ** (k - 1) < 1:
        raise ConfigError(
            "div_val",
            div_val,
            f"small enough that all {k} clusters have width >= 1 (d_embed={d_embed} // div_val**{k - 1})",
            where,
        )
    tie_projs = _check_bool_list(req("tie_projs"), "tie_projs", k, where)
    return LTSConfig(
        n_token=n_token,
        n_layer=n_layer,
        d_model=d_model,
        n_head=n_head,
        d_head=d_head,
        d_inner=d_inner,
        d_embed=d_embed,
        div_val=div_val,
        cutoffs=cutoffs,
        tie_projs=tie_projs,
        tgt_len=check_int(req("tgt_len"), "tgt_len", 1, where),
        mem_len=check_int(opt("mem_len"), "mem_len", 0, where),
        clamp_len=check_int(opt("clamp_len"), "clamp_len", -1, where),
        dropout=_check_prob(opt("dropout"), "dropout", where),
        dropatt=_check_prob(opt("dropatt"), "dropatt", where),
        weight_init_type=check_choice(opt("weight_init_type"), "weight_init_type", INIT_TYPES, where),
        weight_init_std=_check_positive(opt("weight_init_std"), "weight_init_std", where),
        weight_init_range=_check_positive(opt("weight_init_range"), "weight_init_range", where),
        proj_init_std=_check_positive(opt("proj_init_std"), "proj_init_std", where),
    )


def config_from_archai(
    d: Mapping[str, Any], where: str | None = None, *, dialect: str = "transxl"
) -> LTSConfig:
    """Resolve an archai ``model_config.yaml`` (already parsed) per adaptive.md §1-2.

    Accepts per-layer lists or one scalar (homogeneous model) for ``n_head``, ``d_inner`` and
    ``d_head``; ``d_embed``/``d_head`` of ``-1``; any vocabulary and cutoffs (cleaned);
    ``tie_projs`` as bools or 0/1. Keys the models do not use (training settings, logs) are
    ignored, but keys that would select a variant we do not build (untied output tables,
    sampled softmax, pre-LN, Primer, absolute attention) are refused rather than silently
    built wrong. ``dialect`` follows the two archai config classes: ``"gpt2"`` pads a short
    per-layer list with its first element and truncates a long one, and ignores ``d_head``,
    ``mem_len`` and ``clamp_len``; ``"transxl"`` requires lists of exactly ``n_layer``.
    ``where`` (the file) prefixes error messages.
    """
    if dialect not in ("gpt2", "transxl"):
        raise ValueError(f"dialect must be 'gpt2' or 'transxl', not {dialect!r}")
    if not isinstance(d, Mapping):
        raise ConfigError("<root>", type(d).__name__, "a mapping (the parsed model_config.yaml)", where)
    gpt2 = dialect == "gpt2"
    for key, expected, ok in _UNSUPPORTED:
        if key in d and not ok(d[key]):
            raise ConfigError(key, d[key], expected, where)

    n_layer = check_int(get_field(d, "n_layer", where), "n_layer", 1, where)
    d_model = check_int(get_field(d, "d_model", where), "d_model", 1, where)
    n_token = check_int(get_field(d, "n_token", where), "n_token", 2, where)
    n_head = _archai_per_layer(get_field(d, "n_head", where), "n_head", n_layer, gpt2, where)
    d_inner = _archai_per_layer(get_field(d, "d_inner", where), "d_inner", n_layer, gpt2, where)
    raw_head = -1 if gpt2 else d.get("d_head", -1)  # GPT-2 heads always split d_model
    if isinstance(raw_head, (list, tuple)):
        heads = _archai_per_layer(raw_head, "d_head", n_layer, False, where, minimum=-1)
    else:
        heads = (check_int(raw_head, "d_head", -1, where),) * n_layer
    d_head = []
    for i, (h, e) in enumerate(zip(n_head, heads, strict=True)):
        if e > 0:
            d_head.append(e)
        elif e == 0:
            raise ConfigError(
                f"d_head[{i}]" if isinstance(raw_head, (list, tuple)) else "d_head",
                e,
                "a positive integer, or -1 for d_model // n_head",
                where,
            )
        elif d_model % h:
            raise ConfigError(f"n_head[{i}]", h, f"a divisor of d_model={d_model} (d_head is -1)", where)
        else:
            d_head.append(d_model // h)

    d_embed = check_int(d.get("d_embed", -1), "d_embed", -1, where)
    if d_embed == 0:
        raise ConfigError("d_embed", 0, "a positive integer, or -1 for d_model", where)
    d_embed = d_model if d_embed < 0 else d_embed
    cutoffs = clean_cutoffs(d.get("cutoffs", []), n_token, where)
    k = len(cutoffs)
    raw_tie = d.get("tie_projs", [])
    if isinstance(raw_tie, (str, bytes)) or not isinstance(raw_tie, Sequence):
        raise ConfigError("tie_projs", raw_tie, "a list of booleans (0/1 allowed), one per cluster", where)
    for i, t in enumerate(raw_tie):
        if not isinstance(t, (bool, int, np.integer)):
            raise ConfigError(f"tie_projs[{i}]", t, "a boolean (or 0/1)", where)
    if len(raw_tie) == 0:
        tie_projs = [not bool(d.get("adaptive", True))] + [True] * (k - 1)
    elif len(raw_tie) < k:
        raise ConfigError("tie_projs", list(raw_tie), f"at least {k} entries (one per cluster)", where)
    else:
        tie_projs = [bool(t) for t in raw_tie[:k]]

    resolved = {
        "n_token": n_token,
        "n_layer": n_layer,
        "d_model": d_model,
        "n_head": n_head,
        "d_head": tuple(d_head),
        "d_inner": d_inner,
        "d_embed": d_embed,
        "div_val": d.get("div_val", 1),
        "cutoffs": cutoffs,
        "tie_projs": tie_projs,
        "tgt_len": get_field(d, "tgt_len", where),
    }
    for key in (
        "mem_len",
        "clamp_len",
        "dropout",
        "dropatt",
        "weight_init_type",
        "weight_init_std",
        "weight_init_range",
        "proj_init_std",
    ):
        if key in d and not (gpt2 and key in ("mem_len", "clamp_len")):
            resolved[key] = d[key]
    return config_from_dict(resolved, where)


#: archai keys that select a model variant these spaces do not build: (key, expected, test).
_UNSUPPORTED: list[tuple[str, str, Callable[[Any], bool]]] = [
    ("tie_weight", "true (untied output tables are not supported)", lambda v: v is True or v == 1),
    (
        "sample_softmax",
        "-1 (sampled softmax is not supported)",
        lambda v: v is None or (isinstance(v, (int, float)) and v <= 0),
    ),
    ("attn_type", "0 (relative positional attention)", lambda v: v == 0),
    ("pre_lnorm", "false (post-LayerNorm Transformer-XL)", lambda v: not v),
    ("primer_conv", "false (Primer is not supported)", lambda v: not v),
    ("primer_square", "false (Primer is not supported)", lambda v: not v),
    ("same_length", "false", lambda v: not v),
]


def _archai_per_layer(
    value: Any, field: str, n_layer: int, pad: bool, where: str | None, minimum: int = 1
) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ConfigError(
                field, value, f"a list of {n_layer} integers (one per layer) or one integer", where
            )
        if pad:  # archai's GPT-2 config: pad with the first element, truncate
            value = (list(value) + [value[0]] * n_layer)[:n_layer]
    return check_int_list(value, field, n_layer, minimum, where)


def _check_clean_cutoffs(value: Any, n_token: int, where: str | None) -> tuple[int, ...]:
    expected = f"strictly increasing positive integers ending with n_token={n_token} (cleaned cutoffs)"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ConfigError("cutoffs", value, expected, where)
    out = tuple(check_int(v, f"cutoffs[{i}]", 1, where) for i, v in enumerate(value))
    if any(b <= a for a, b in itertools.pairwise(out)) or out[-1] != n_token:
        raise ConfigError("cutoffs", list(value), expected, where)
    return out


def _check_bool_list(value: Any, field: str, length: int, where: str | None) -> tuple[bool, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ConfigError(field, value, f"a list of {length} booleans (one per cluster)", where)
    for i, v in enumerate(value):
        if not isinstance(v, bool):
            raise ConfigError(f"{field}[{i}]", v, "true or false", where)
    return tuple(value)


def _check_float(
    value: Any, field: str, expected: str, ok: Callable[[float], bool], where: str | None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(field, value, expected, where)
    if not math.isfinite(float(value)) or not ok(float(value)):
        raise ConfigError(field, value, expected, where)
    return float(value)


def _check_prob(value: Any, field: str, where: str | None) -> float:
    return _check_float(value, field, "a probability in [0, 1)", lambda v: 0.0 <= v < 1.0, where)


def _check_positive(value: Any, field: str, where: str | None) -> float:
    return _check_float(value, field, "a positive number", lambda v: v > 0.0, where)


# ===================================================================== modules


def init_weight_(tensor: torch.Tensor, config: LTSConfig) -> None:
    """archai's ``init_weight``: N(0, weight_init_std) or U(-weight_init_range, weight_init_range)."""
    if config.weight_init_type == "uniform":
        nn.init.uniform_(tensor, -config.weight_init_range, config.weight_init_range)
    else:
        nn.init.normal_(tensor, 0.0, config.weight_init_std)


class AdaptiveEmbedding(nn.Module):
    """Adaptive input embedding (Baevski & Auli 2019), archai/NVIDIA layout.

    Frequent tokens (the head cluster) get wide vectors, rarer clusters narrower ones
    (``d_embed // div_val**i``); each cluster's projection ``P_i [d_model, d_i]`` maps them to
    ``d_model``. With ``div_val = 1`` there is a single table and a single projection, the
    latter only if ``d_embed != d_model``. The output is scaled by ``sqrt(d_model)``.
    Parameter names (``emb_layers``, ``emb_projs``) are the original ones.
    """

    def __init__(self, config: LTSConfig) -> None:
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        self.emb_scale = config.d_model**0.5
        self.emb_layers = nn.ModuleList()
        self.emb_projs = nn.ParameterList()
        if config.div_val == 1:
            self.emb_layers.append(nn.Embedding(config.n_token, config.d_embed))
            if config.d_embed != config.d_model:
                self.emb_projs.append(nn.Parameter(torch.empty(config.d_model, config.d_embed)))
        else:
            for lo, hi, width in config.clusters():
                self.emb_layers.append(nn.Embedding(hi - lo, width))
                self.emb_projs.append(nn.Parameter(torch.empty(config.d_model, width)))

    def projection(self, cluster: int) -> nn.Parameter | None:
        """The input projection of ``cluster`` (``div_val = 1``: the single one, or None)."""
        if len(self.emb_projs) == 0:
            return None
        return self.emb_projs[0] if self.config.div_val == 1 else self.emb_projs[cluster]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids [...]`` (any shape) -> embeddings ``[..., d_model]``."""
        if self.config.div_val == 1:
            emb = self.emb_layers[0](ids)  # [..., d_embed]
            if len(self.emb_projs):
                emb = F.linear(emb, self.emb_projs[0])  # [..., d_model]
            return emb * self.emb_scale
        flat = ids.reshape(-1)  # [N]
        weight = self.emb_projs[0]
        out = torch.zeros(flat.numel(), self.d_model, dtype=weight.dtype, device=weight.device)
        for i, (lo, hi, _) in enumerate(self.config.clusters()):
            idx = ((flat >= lo) & (flat < hi)).nonzero(as_tuple=True)[0]  # tokens of this cluster
            if idx.numel() == 0:
                continue
            emb_i = F.linear(self.emb_layers[i](flat[idx] - lo), self.emb_projs[i])  # [n_i, d_model]
            out = out.index_copy(0, idx, emb_i)
        return out.view(*ids.shape, self.d_model) * self.emb_scale

    @torch.no_grad()
    def reset_parameters(self, init_table: Callable[[torch.Tensor], None]) -> None:
        """Tables with ``init_table`` (N(0, 0.02) in both models), projections N(0, proj_init_std)."""
        for emb in self.emb_layers:
            init_table(emb.weight)
        for proj in self.emb_projs:
            nn.init.normal_(proj, 0.0, self.config.proj_init_std)


class ProjectedAdaptiveLogSoftmax(nn.Module):
    """Projected adaptive log-softmax (Grave et al. 2017), archai/NVIDIA layout, tied weights.

    The head cluster scores its ``r_0`` tokens plus one logit per tail cluster; a token in
    tail cluster ``i`` gets ``log p(cluster i) + log p(token | cluster i)``. Each cluster first
    maps the hidden state to its width with a projection ``P_i [d_model, d_i]`` (``h @ P_i``),
    then scores it against its weight table. Output tables are the embedding's tables (the
    ``out_layers_weights`` entries *are* ``embedding.emb_layers[i].weight``); projections are
    the embedding's where ``tie_projs[i]``, else owned here. So this module owns only
    ``cluster_weight``/``cluster_bias``, the output biases and untied projections
    (:func:`softmax_own_params`).
    """

    def __init__(self, config: LTSConfig, embedding: AdaptiveEmbedding) -> None:
        super().__init__()
        self.config = config
        k = config.n_clusters
        if k > 1:
            self.cluster_weight = nn.Parameter(torch.empty(k - 1, config.d_embed))
            self.cluster_bias = nn.Parameter(torch.zeros(k - 1))
        else:
            self.register_parameter("cluster_weight", None)
            self.register_parameter("cluster_bias", None)
        if config.div_val == 1:
            self.out_layers_biases = nn.ParameterList([nn.Parameter(torch.zeros(config.n_token))])
        else:
            self.out_layers_biases = nn.ParameterList(
                [nn.Parameter(torch.zeros(hi - lo)) for lo, hi, _ in config.clusters()]
            )
        # str(cluster) -> projection [d_model, d_i]; tied ones (and the output tables,
        # out_layers_weights) are filled in by tie_to
        self.out_projs = nn.ParameterDict()
        if config.has_projections():
            for i, (_, _, width) in enumerate(config.clusters()):
                if not config.tie_projs[i]:
                    self.out_projs[str(i)] = nn.Parameter(torch.empty(config.d_model, width))
        self.tie_to(embedding)

    def tie_to(self, embedding: AdaptiveEmbedding) -> None:
        """Make the output tables (and tied projections) the embedding's own tensors. Called
        again after ``to_empty``, which gives every tensor new storage."""
        self.out_layers_weights = nn.ParameterList([emb.weight for emb in embedding.emb_layers])
        if self.config.has_projections():
            for i in range(self.config.n_clusters):
                if self.config.tie_projs[i]:
                    self.out_projs[str(i)] = embedding.projection(i)

    def _cluster(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Weight ``[n_i, d_i]``, bias ``[n_i]`` and projection ``[d_model, d_i]`` of cluster i."""
        lo, hi, _ = self.config.clusters()[i]
        proj = self.out_projs.get(str(i))
        if self.config.div_val == 1:
            return self.out_layers_weights[0][lo:hi], self.out_layers_biases[0][lo:hi], proj
        return self.out_layers_weights[i], self.out_layers_biases[i], proj

    @staticmethod
    def _logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, proj: torch.Tensor | None):
        if proj is not None:
            hidden = hidden @ proj  # [N, d_model] @ [d_model, d_i] -> [N, d_i]
        return F.linear(hidden, weight, bias)  # [N, n_i]

    def head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Un-normalised head-cluster logits ``[N, r_0 + K - 1]``: head tokens, then one column
        per tail cluster (what archai's synflow scores, the softmax left out)."""
        weight, bias, proj = self._cluster(0)
        if self.cluster_weight is not None:
            weight = torch.cat([weight, self.cluster_weight], dim=0)
            bias = torch.cat([bias, self.cluster_bias], dim=0)
        return self._logits(hidden, weight, bias, proj)

    def _head_log_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[N, r_0 + K - 1]``: head tokens, then one column per tail cluster."""
        return F.log_softmax(self.head_logits(hidden), dim=-1)

    def log_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        """Full log-probabilities: ``hidden [N, d_model]`` -> ``[N, n_token]``."""
        head = self._head_log_prob(hidden)
        r0 = self.config.cutoffs[0]
        parts = [head[:, :r0]]
        for i in range(1, self.config.n_clusters):
            tail = F.log_softmax(self._logits(hidden, *self._cluster(i)), dim=-1)  # [N, n_i]
            parts.append(head[:, r0 + i - 1 : r0 + i] + tail)
        return torch.cat(parts, dim=1)

    def forward(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood: ``hidden [N, d_model]``, ``target [N]`` -> ``[N]``.
        Tail clusters are only evaluated for the tokens that fall in them."""
        head = self._head_log_prob(hidden)
        r0 = self.config.cutoffs[0]
        logprob = head.new_zeros(target.shape)
        in_head = target < r0
        logprob = torch.where(in_head, head.gather(1, target.clamp(max=r0 - 1)[:, None]).squeeze(1), logprob)
        for i, (lo, hi, _) in enumerate(self.config.clusters()[1:], start=1):
            idx = ((target >= lo) & (target < hi)).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            tail = F.log_softmax(self._logits(hidden[idx], *self._cluster(i)), dim=-1)  # [n, n_i]
            lp = head[idx, r0 + i - 1] + tail.gather(1, (target[idx] - lo)[:, None]).squeeze(1)
            logprob = logprob.index_copy(0, idx, lp)
        return -logprob

    @torch.no_grad()
    def reset_parameters(self, init_cluster: Callable[[torch.Tensor], None]) -> None:
        """Cluster weight with ``init_cluster``, own projections N(0, proj_init_std), biases 0.
        Tied tensors are left to the embedding."""
        if self.cluster_weight is not None:
            init_cluster(self.cluster_weight)
            nn.init.zeros_(self.cluster_bias)
        for bias in self.out_layers_biases:
            nn.init.zeros_(bias)
        for i, proj in self.out_projs.items():
            if not self.config.tie_projs[int(i)]:
                nn.init.normal_(proj, 0.0, self.config.proj_init_std)


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

    def check_config(self, config: LTSConfig, where: str | None = None) -> None:
        """Space-specific rules beyond :func:`config_from_dict` (none here)."""

    # ---------------------------------------------------------------- genome
    @property
    def n_slots(self) -> int:
        return max(check_int(v, "n_layer", 1, f"space {self.name}") for v in self.values["n_layer"])

    def genes(self) -> list[Gene]:
        values = dict(self.values)
        values["cutoffs"] = tuple(tuple(int(x) for x in c) for c in values["cutoffs"])
        self.values["cutoffs"] = values["cutoffs"]
        for mode in values["tie_projs"]:
            if mode not in TIE_MODES:
                raise ConfigError("tie_projs", mode, f"one of {list(TIE_MODES)}", f"space {self.name}")
        for d in values["d_model"]:
            for h in values["n_head"]:
                if d % h:
                    raise ConfigError(
                        "n_head", h, f"a divisor of every d_model value ({d} is not)", f"space {self.name}"
                    )
        genes = [Gene(k, values[k]) for k in ("n_layer", "d_model", "d_embed", "div_val")]
        for i in range(self.n_slots):
            genes.append(Gene(f"layers[{i}].d_inner", values["d_inner"]))
            genes.append(Gene(f"layers[{i}].n_head", values["n_head"]))
        genes += [Gene(k, values[k]) for k in self.setting_genes]
        return genes

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
        settings = {
            "n_token": config.n_token,
            "cutoffs": config.cutoffs,
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
        init would overwrite anyway (half the time of a 140M-parameter build). ``to_empty``
        gives every tensor its own storage, so the weight tying is redone before the init.
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
