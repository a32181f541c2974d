"""zerolm of a space's own fresh initialisation, without building the model.

Every weight matrix of a freshly built model holds i.i.d. zero-mean draws from a law the
space's init code names (``normal_(0, std)``, ``uniform_(-a, a)``). By the Marchenko-Pastur law
its singular values are those of a unit-variance matrix of the same shape times ``std`` (see
``proxies.spectral``, which already rescales a reference spectrum per shape by the *measured*
std of the built weights). So all zerolm needs is, per matrix: its sub-module, its layer, its
shape and its law's std. Two ways to get them, both far cheaper than building:

- **recorded** (any space; ``fastinit_record.py``): run ``space.build(config, seed)`` under
  a ``TorchDispatchMode`` that records every in-place write to a tensor and *skips the random
  fills* (the expensive part of a build); the last full write of each parameter's storage is
  its law. Partial
  writes that zero a few rows (an embedding's padding row) scale the std as they scale the
  built matrix's measured one. Anything else written to a weight (``copy_``, ``mul_``, a
  truncated normal's ``erfinv_``...), a non-zero mean, or a weight never written refuses the
  shortcut: :class:`LawUnknown`, and the caller builds the model (never a guess).
- **declared** (the shipped spaces, about 100x cheaper than a build): the same table
  written from the config, following the spaces' documented init. It is checked against the
  recorded table on the first architecture of each space in every process, and by the tests
  on many sampled architectures; on a mismatch it is switched off for that space (with a
  warning) and the recorded table is used.

The values equal the built path's fresh-init values up to the built weights' sampling noise
in their measured std (relative ``1/sqrt(m n)``); docs/zerolm.md gives the measured agreement.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trainfree.proxies.fastinit_record import MAX_ZEROED_SHARE, LawUnknown, MatrixLaw, recorded_laws
from trainfree.proxies.spectral import _CACHE, EMBEDDING, STATISTICS, SpectrumCache

__all__ = [  # the recorded way's names, re-exported: callers import them from here
    "MAX_ZEROED_SHARE",
    "LawUnknown",
    "MatrixLaw",
    "declare",
    "declared_laws",
    "fresh_init_capacities",
    "fresh_init_laws",
    "law_capacities",
    "matrix_capacity",
    "recorded_laws",
    "same_laws",
]

# ---------------------------------------------------------------------------- declared
LawFn = Callable[[Any, Any], list[MatrixLaw]]
_DECLARED: dict[str, LawFn] = {}
_VERIFIED: dict[str, bool] = {}


def declare(*space_classes: str) -> Callable[[LawFn], LawFn]:
    """Register a declared law table for spaces given by ``module.QualName``."""

    def wrap(fn: LawFn) -> LawFn:
        for name in space_classes:
            _DECLARED[name] = fn
        return fn

    return wrap


def _class_name(space: Any) -> str:
    return f"{type(space).__module__}.{type(space).__qualname__}"


def _mat(out: list[MatrixLaw], name: str, group: str, layer: int, rows: int, cols: int, std: float) -> None:
    if rows >= 2 and cols >= 2:  # spectral._is_matrix
        out.append(MatrixLaw(name, group, layer, rows, cols, std))


def _lts_embedding(out: list[MatrixLaw], c: Any, table_std: float, prefix: str) -> None:
    """Adaptive input embedding (spaces.lts.AdaptiveEmbedding): one table (and a projection
    when ``d_embed != d_model``) for ``div_val = 1``, else a table and a projection per cluster."""
    if c.div_val == 1:
        _mat(out, f"{prefix}.emb_layers.0.weight", EMBEDDING, 0, c.n_token, c.d_embed, table_std)
        if c.d_embed != c.d_model:
            _mat(out, f"{prefix}.emb_projs.0", EMBEDDING, 0, c.d_model, c.d_embed, c.proj_init_std)
        return
    for i, (lo, hi, width) in enumerate(c.clusters()):
        _mat(out, f"{prefix}.emb_layers.{i}.weight", EMBEDDING, 0, hi - lo, width, table_std)
        _mat(out, f"{prefix}.emb_projs.{i}", EMBEDDING, 0, c.d_model, width, c.proj_init_std)


def _lts_std(c: Any) -> float:
    if c.weight_init_type == "uniform":
        return c.weight_init_range / math.sqrt(3.0)
    return c.weight_init_std


@declare("trainfree.spaces.gpt2.GPT2Space")
def gpt2_laws(space: Any, c: Any) -> list[MatrixLaw]:
    """HF GPT-2 init: N(0, std), ``c_proj`` N(0, std / sqrt(2 L)) (spaces.gpt2)."""
    out: list[MatrixLaw] = []
    d, std = c.d_model, c.weight_init_std
    _lts_embedding(out, c, std, "embedding.wte")
    _mat(out, "embedding.wpe.weight", EMBEDDING, 0, c.tgt_len, d, std)
    proj_std = std / math.sqrt(2 * c.n_layer)
    for i, f in enumerate(c.d_inner):
        _mat(out, f"blocks.{i}.attn.c_attn.weight", "attention", i, 3 * d, d, std)
        _mat(out, f"blocks.{i}.attn.c_proj.weight", "attention", i, d, d, proj_std)
        _mat(out, f"blocks.{i}.ffn.c_fc.weight", "ffn", i, f, d, std)
        _mat(out, f"blocks.{i}.ffn.c_proj.weight", "ffn", i, d, f, proj_std)
    return out


@declare("trainfree.spaces.transxl.TransXLSpace")
def transxl_laws(space: Any, c: Any) -> list[MatrixLaw]:
    """archai ``weights_init``: every weight from ``init_weight`` (spaces.transxl)."""
    out: list[MatrixLaw] = []
    d, std = c.d_model, _lts_std(c)
    _lts_embedding(out, c, std, "embedding")
    for i, (h, e, f) in enumerate(zip(c.n_head, c.d_head, c.d_inner, strict=True)):
        _mat(out, f"blocks.{i}.attn.qkv_net.weight", "attention", i, 3 * h * e, d, std)
        _mat(out, f"blocks.{i}.attn.r_net.weight", "attention", i, h * e, d, std)
        _mat(out, f"blocks.{i}.attn.o_net.weight", "attention", i, d, h * e, std)
        _mat(out, f"blocks.{i}.ffn.0.weight", "ffn", i, f, d, std)
        _mat(out, f"blocks.{i}.ffn.3.weight", "ffn", i, d, f, std)
    return out


@declare("trainfree.spaces.flexibert.FlexiBertSpace", "trainfree.spaces.flexibert.FlexiBertPublishedSpace")
def flexibert_laws(space: Any, config: Any) -> list[MatrixLaw]:
    """HF BERT init N(0, initializer_range), padding row zeroed; ConvBERT's separable
    convolution N(0, initializer_range) (spaces.flexibert)."""
    c = space.effective_config(config)
    out: list[MatrixLaw] = []
    h, e, std = c.hidden_size, c.embedding_size, c.initializer_range
    pad_std = std * math.sqrt(1.0 - 1.0 / c.vocab_size) if c.pad_token_id is not None else std
    _mat(out, "embedding.word_embeddings.weight", EMBEDDING, 0, c.vocab_size, e, pad_std)
    _mat(out, "embedding.position_embeddings.weight", EMBEDDING, 0, c.max_position, e, std)
    _mat(out, "embedding.token_type_embeddings.weight", EMBEDDING, 0, c.type_vocab_size, e, std)
    if e != h:
        _mat(out, "embedding.project.weight", EMBEDDING, 0, h, e, std)
    for i, layer in enumerate(c.layers):
        p = f"blocks.{i}.attn"
        k, op = layer.num_heads, layer.operation_type
        if op == "SA":
            inner = k * (h // k)
            for name in ("query", "key", "value"):
                _mat(out, f"{p}.{name}.weight", "attention", i, inner, h, std)
            if layer.operation_parameter == "WMA":
                _mat(out, f"{p}.weight.weight", "attention", i, inner, inner, std)
            _mat(out, f"{p}.output.weight", "attention", i, h, h, std)
        elif op == "LT":
            _mat(out, f"{p}.input.weight", "attention", i, k * (h // k), h, std)
        else:  # DSC: ConvBERT, c = max(1, k // 2) heads of size h // k
            heads, kernel = max(1, k // 2), int(layer.operation_parameter)
            inner = heads * (h // k)
            for name in ("query", "key", "value"):
                _mat(out, f"{p}.{name}.weight", "attention", i, inner, h, std)
            _mat(out, f"{p}.key_conv_attn_layer.depthwise.weight", "attention", i, h, kernel, std)
            _mat(out, f"{p}.key_conv_attn_layer.pointwise.weight", "attention", i, inner, h, std)
            _mat(out, f"{p}.conv_kernel_layer.weight", "attention", i, heads * kernel, inner, std)
            _mat(out, f"{p}.conv_out_layer.weight", "attention", i, inner, h, std)
            _mat(out, f"{p}.output.weight", "attention", i, h, h, std)
        f = layer.ffn_dim
        _mat(out, f"blocks.{i}.ffn.dense_in.weight", "ffn", i, f, h, std)
        for j in range(layer.num_ff - 1):
            _mat(out, f"blocks.{i}.ffn.stack.{j}.weight", "ffn", i, f, f, std)
        _mat(out, f"blocks.{i}.ffn.dense_out.weight", "ffn", i, h, f, std)
    return out


@declare("trainfree.spaces.llama.LlamaSpace")
def llama_laws(space: Any, c: Any) -> list[MatrixLaw]:
    """transformers' Llama init: every Linear and the embedding N(0, initializer_range)
    (spaces._llama_model.init_llama_); a tied head is the embedding's tensor (not a zerolm
    matrix either way)."""
    out: list[MatrixLaw] = []
    d, std, q, k, f = c.hidden_size, c.initializer_range, c.q_width, c.kv_width, c.intermediate_size
    _mat(out, "embedding.weight", EMBEDDING, 0, c.vocab_size, d, std)
    for i in range(c.num_hidden_layers):
        for name, rows, cols in (("q_proj", q, d), ("k_proj", k, d), ("v_proj", k, d), ("o_proj", d, q)):
            _mat(out, f"blocks.{i}.attn.{name}.weight", "attention", i, rows, cols, std)
        for name, rows, cols in (("gate_proj", f, d), ("up_proj", f, d), ("down_proj", d, f)):
            _mat(out, f"blocks.{i}.ffn.{name}.weight", "ffn", i, rows, cols, std)
    return out


def same_laws(a: list[MatrixLaw], b: list[MatrixLaw], rtol: float = 1e-9) -> bool:
    """Equal multisets of (group, layer, shape, std), names aside."""

    def key(m: MatrixLaw) -> tuple:
        return (m.group, m.layer, m.rows, m.cols)

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        if key(x) != key(y) or not math.isclose(x.std, y.std, rel_tol=rtol, abs_tol=1e-15):
            return False
    return True


def declared_laws(space: Any, config: Any, seed: int | None = 0) -> list[MatrixLaw] | None:
    """The space's declared table for ``config``, or None (no table, or switched off because
    it did not match the recorded build on this process's first architecture of the space)."""
    name = _class_name(space)
    declared = _DECLARED.get(name)
    if declared is None or not _VERIFIED.get(name, True):
        return None
    laws = declared(space, config)
    if name not in _VERIFIED:
        # a space whose models can be huge (llama: 1B parameters) offers a small twin with
        # the same structure and init, so that the check does not build the huge one
        twin = getattr(space, "small_twin", None)
        probe = twin(config) if twin is not None else config
        try:
            _VERIFIED[name] = same_laws(declared(space, probe), recorded_laws(space, probe, seed))
        except LawUnknown:
            _VERIFIED[name] = False
        if not _VERIFIED[name]:
            warnings.warn(
                f"zerolm: the declared init laws of space {space.name!r} do not match its build; "
                "recording them from each build instead (slower)",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
    return laws


def fresh_init_laws(space: Any, config: Any, seed: int | None = 0) -> list[MatrixLaw]:
    """The laws of a fresh ``space.build(config, seed)``: declared when the space has a table
    that matched the recorded one in this process, else recorded. LawUnknown if neither."""
    laws = declared_laws(space, config, seed)
    return laws if laws is not None else recorded_laws(space, config, seed)


# ---------------------------------------------------------------------------- capacities
@functools.lru_cache(maxsize=4096)
def _unit_statistic(rows: int, cols: int, statistic: str, scale: float) -> float:
    """The statistic of ``scale * reference(rows, cols)``; nuclear and Frobenius are exact in
    the scale, so they are cached at scale 1."""
    ref = _reference(rows, cols)
    return float(STATISTICS[statistic](scale * ref.double()))


def _reference(rows: int, cols: int, cache: SpectrumCache = _CACHE) -> torch.Tensor:
    from trainfree.proxies.spectral import one_thread

    with one_thread():
        return cache.reference(rows, cols)


def matrix_capacity(law: MatrixLaw, statistic: str) -> float:
    """The capacity statistic of a matrix with i.i.d. entries of ``law.std``."""
    if law.std == 0.0:
        return 0.0
    if statistic == "nuclear":
        return law.std * _unit_statistic(law.rows, law.cols, statistic, 1.0)
    if statistic == "frobenius":
        return law.std**2 * _unit_statistic(law.rows, law.cols, statistic, 1.0)
    return _unit_statistic(law.rows, law.cols, statistic, float(np.float32(law.std)))


def law_capacities(laws: list[MatrixLaw], statistic: str = "nuclear") -> dict[str, dict[int, float]]:
    """Per-layer sub-module capacities, as ``spectral.layer_capacities`` returns them."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown capacity statistic '{statistic}'; expected one of {list(STATISTICS)}")
    caps: dict[str, dict[int, float]] = {"attention": {}, "ffn": {}, EMBEDDING: {}}
    for law in laws:
        layers = caps[law.group]
        layers[law.layer] = layers.get(law.layer, 0.0) + matrix_capacity(law, statistic)
    return caps


def fresh_init_capacities(
    space: Any, config: Any, seed: int | None = 0, statistic: str = "nuclear"
) -> dict[str, dict[int, float]] | None:
    """Capacities of the space's fresh initialisation, or None when a law is unknown (the
    caller then builds the model)."""
    try:
        return law_capacities(fresh_init_laws(space, config, seed), statistic)
    except LawUnknown:
        return None
