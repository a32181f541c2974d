"""The LiteTransformerSearch config, shared by the GPT-2 and Transformer-XL spaces, and its
two readers: our own JSON form (:func:`config_from_dict`) and archai's ``model_config.yaml``
(:func:`config_from_archai`).

archai resolves a ``model_config.yaml`` before building: ``-1`` placeholders become their
defaults (``d_embed = d_model``, ``d_head = d_model // n_head``), per-layer lists are padded or
checked, and the adaptive-softmax cutoffs are cleaned against the vocabulary, which decides
the number of clusters. :class:`LTSConfig` is that resolved form, hashable and comparable.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainfree.errors import ConfigError
from trainfree.spaces.checks import check_choice, check_int, check_int_list, get_field


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
    """archai's cutoff cleaning, which decides the number of clusters.

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
    """Resolve an archai ``model_config.yaml`` (already parsed) as archai's config classes do.

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
    d_head = _archai_head_dims(d, n_head, d_model, gpt2, where)

    d_embed = check_int(d.get("d_embed", -1), "d_embed", -1, where)
    if d_embed == 0:
        raise ConfigError("d_embed", 0, "a positive integer, or -1 for d_model", where)
    d_embed = d_model if d_embed < 0 else d_embed
    cutoffs = clean_cutoffs(d.get("cutoffs", []), n_token, where)
    k = len(cutoffs)
    tie_projs = _archai_tie_projs(d, k, where)

    resolved = {
        "n_token": n_token,
        "n_layer": n_layer,
        "d_model": d_model,
        "n_head": n_head,
        "d_head": d_head,
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


def _archai_head_dims(
    d: Mapping[str, Any], n_head: tuple[int, ...], d_model: int, gpt2: bool, where: str | None
) -> tuple[int, ...]:
    """Each layer's ``d_head`` as archai resolves it: a scalar or a per-layer list, ``-1`` for
    ``d_model // n_head`` (which must divide); GPT-2's config has no ``d_head`` (always -1)."""
    n_layer = len(n_head)
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
    return tuple(d_head)


def _archai_tie_projs(d: Mapping[str, Any], k: int, where: str | None) -> list[bool]:
    """``tie_projs`` for ``k`` clusters, as archai reads it: bools or 0/1, extra entries ignored;
    when absent, the head cluster's projection is tied unless ``adaptive``, the tail's always."""
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
    return tie_projs


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
