"""Singular-value spectra of a Transformer's weight matrices, grouped by functional sub-module.

This is the measurement behind the ``zerolm`` proxy. Every weight tensor with two or more
dimensions (convolution kernels are flattened to ``[out, in * k]``) of a layer's token mixer
(``attention``) or feed-forward stack (``ffn``), and of the input embedding (``embedding``:
token tables, their projections, position tables), is reduced to one capacity number from its
singular values. Output layers and norms are left out (see docs/zerolm.md for the
measurements behind these choices).

Speed. Only singular values are computed (``torch.linalg.svdvals``, float32), batched over
matrices of equal shape. For a model that ``SearchSpace.build`` has *just initialised*, every
weight matrix holds i.i.d. zero-mean draws; by the Marchenko-Pastur law its spectrum is, up to
fluctuations of relative order ``1/min(m, n)``, the spectrum of a standard Gaussian matrix of
the same shape scaled by the entries' standard deviation (universality: normal and uniform
initialisations give the same limit). So for such models we compute one reference spectrum
per shape, once per process, and rescale it by each matrix's *measured* standard deviation.
Small shapes (``min(m, n) <= 128``) get the singular values of a seeded Gaussian draw rescaled to
unit empirical variance (averaged over 8 draws for ``min(m, n) <= 32``); larger
ones the quantiles of the Marchenko-Pastur law itself (no SVD at all; measured deviation of
the nuclear norm from a real draw below 0.5% from 192 x 640 up, see tests).
The shortcut is only taken when the caller says the weights are a fresh i.i.d. initialisation
and the matrix passes a cheap check (mean near zero); any other module - pre-trained weights,
a hand-made module - gets exact SVDs of its own weights.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Capacity statistics of one matrix's singular values ``s`` (shape ``[..., k]``).
STATISTICS = {
    "nuclear": lambda s: s.sum(-1),  # nuclear norm: sum of singular values
    "log1p": lambda s: torch.log1p(s).sum(-1),  # log-volume: sum of log(1 + s)
    "frobenius": lambda s: (s * s).sum(-1),  # squared Frobenius norm: sum of s^2
}

#: Sub-modules measured per layer; the embedding is one more group, outside the layers.
GROUPS = ("attention", "ffn")
EMBEDDING = "embedding"


@dataclass(frozen=True)
class WeightMatrix:
    """One weight matrix and where it sits: sub-module group and layer index."""

    name: str
    group: str
    layer: int  # 0 for the embedding
    weight: torch.Tensor  # [m, n], m * n > 0


def transformer_matrices(model: nn.Module) -> list[WeightMatrix]:
    """The attention and feed-forward weight matrices of ``model``, per layer, and the input
    embedding's matrices (group ``embedding``, layer 0).

    Models built by a trainfree space follow the convention ``model.blocks[i].attn`` /
    ``.ffn`` / ``model.embedding``. Any other module (a Hugging Face BERT or GPT-2, say) is
    split by parameter names: the layer index is the first ``.<number>.`` in the name, and
    names mentioning attention (``attn``, ``attention``, ``query``, ``key``, ``value``,
    ``self``) go to ``attention``, those mentioning ``mlp``, ``ffn``, ``intermediate``, ``fc``
    or an ``output.dense`` go to ``ffn``; names outside the layers that mention ``embed``,
    ``wte`` or ``wpe`` go to ``embedding``; everything else (heads, norms) is left out.
    """
    out: list[WeightMatrix] = []
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and all(hasattr(b, "attn") and hasattr(b, "ffn") for b in blocks):
        embedding = getattr(model, "embedding", None)
        if isinstance(embedding, nn.Module):
            for name, p in embedding.named_parameters(prefix="embedding"):
                if _is_matrix(p):
                    out.append(WeightMatrix(name, EMBEDDING, 0, _as_matrix(p)))
        for i, block in enumerate(blocks):
            for group, module in (("attention", block.attn), ("ffn", block.ffn)):
                if module is None:
                    continue
                for name, p in module.named_parameters(
                    prefix=f"blocks.{i}.{'attn' if group == 'attention' else 'ffn'}"
                ):
                    if _is_matrix(p):
                        out.append(WeightMatrix(name, group, i, _as_matrix(p)))
        return out
    for name, p in model.named_parameters():
        if not _is_matrix(p):
            continue
        layer = re.search(r"\.(\d+)\.", name)
        group = _group_by_name(name)
        if layer and group:
            out.append(WeightMatrix(name, group, int(layer.group(1)), _as_matrix(p)))
        elif not layer and re.search(r"embed|wte|wpe", name.lower()):
            out.append(WeightMatrix(name, EMBEDDING, 0, _as_matrix(p)))
    return out


def _group_by_name(name: str) -> str | None:
    lowered = name.lower()
    if re.search(r"attn|attention|query|key|value|\.self\.", lowered):
        return "attention"
    if re.search(r"mlp|ffn|feed_?forward|intermediate|\.fc|fc\d|c_fc|output\.dense", lowered):
        return "ffn"
    return None


def _is_matrix(p: torch.Tensor) -> bool:
    return p.dim() >= 2 and p.shape[0] >= 2 and p[0].numel() >= 2


def _as_matrix(p: torch.Tensor) -> torch.Tensor:
    return p.detach().reshape(p.shape[0], -1)


def marchenko_pastur_singular_values(m: int, n: int, grid: int = 4096) -> np.ndarray:
    """Singular values expected of an ``m x n`` matrix of i.i.d. unit-variance entries.

    With ``k = min(m, n)``, ``N = max(m, n)`` and ``y = k / N``, the eigenvalues of
    ``W W^T / N`` follow the Marchenko-Pastur law on ``[(1 - sqrt(y))^2, (1 + sqrt(y))^2]``;
    we return ``sqrt(N * q_i)`` for its quantiles ``q_i`` at ``(i + 0.5) / k``, largest first.
    """
    k, big = min(m, n), max(m, n)
    y = k / big
    lo, hi = (1 - y**0.5) ** 2, (1 + y**0.5) ** 2
    t = np.linspace(0.0, np.pi, grid)  # x = lo + (hi - lo)(1 - cos t)/2 smooths the edge singularities
    x = lo + (hi - lo) * (1 - np.cos(t)) / 2
    density = np.sqrt(np.clip((hi - x) * (x - lo), 0, None)) / (2 * np.pi * y * np.maximum(x, 1e-300))
    f = density * (hi - lo) * np.sin(t) / 2
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(t))])
    cdf /= cdf[-1]
    quantiles = np.interp((np.arange(k) + 0.5) / k, cdf, x)
    return np.sqrt(big * quantiles)[::-1].copy()


class SpectrumCache:
    """Reference singular values of a unit-variance i.i.d. matrix, one per shape.

    ``svdvals(W) ~= std(W) * reference(W.shape)`` for i.i.d. zero-mean ``W``; see the module
    docstring. Small references are drawn from a seed fixed by the shape, so results do not
    depend on the order in which shapes are first met.
    """

    exact_up_to = 128
    draws = 8

    def __init__(self) -> None:
        self._ref: dict[tuple[int, int], torch.Tensor] = {}

    def reference(self, m: int, n: int) -> torch.Tensor:
        key = (min(m, n), max(m, n))
        if key not in self._ref:
            if key[0] <= self.exact_up_to:
                # mean spectrum of a few draws, each rescaled to empirical std 1 (the matrices
                # it stands for are rescaled by *their* empirical std)
                gen = torch.Generator().manual_seed(key[0] * 100_003 + key[1])
                n_draws = self.draws if key[0] <= 32 else 1  # one draw is within 0.05% from 64 up
                draws = torch.randn((n_draws, *key), generator=gen)
                draws /= draws.std(dim=(1, 2), keepdim=True)
                self._ref[key] = svdvals(draws).mean(0)
            else:
                self._ref[key] = torch.from_numpy(marchenko_pastur_singular_values(*key)).float()
        return self._ref[key]

    def __len__(self) -> int:
        return len(self._ref)


_CACHE = SpectrumCache()


def svdvals(w: torch.Tensor) -> torch.Tensor:
    """Singular values of ``w`` (``[..., m, n]``), largest first, float32.

    Elongated matrices (one side at least 4 times the other: embedding tables, 20000 x 64)
    go through the eigenvalues of their small ``k x k`` Gram matrix in float64, ``O(k^2 N)``
    instead of LAPACK's SVD. Squaring the matrix squares its condition number; float64 keeps
    singular values down to ``1e-7`` of the largest accurate to float32 precision, far below
    what moves a nuclear norm.
    """
    m, n = w.shape[-2:]
    if max(m, n) < 4 * min(m, n):
        return torch.linalg.svdvals(w)
    w64 = w.double()
    gram = w64 @ w64.mT if m < n else w64.mT @ w64
    return torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt().flip(-1).float()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored after).

    The spectra are many small reductions and decompositions: extra threads gain little on an
    idle machine and collapse when another process holds a core (figures: docs/zerolm.md).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def looks_iid(w: torch.Tensor, std: float) -> bool:
    """Cheap guard for the cache: the entries' mean is within 5 standard errors of zero."""
    return abs(float(w.mean())) <= 5.0 * std / max(1.0, w.numel() ** 0.5) + 1e-12


@torch.no_grad()
def singular_values(
    matrices: Iterable[WeightMatrix], fresh_init: bool = False, cache: SpectrumCache | None = None
) -> list[torch.Tensor]:
    """Singular values of each matrix (float32), in input order.

    With ``fresh_init=True`` the i.i.d. shortcut is used where the guard allows; exact SVDs
    are batched over matrices of equal shape.
    """
    with one_thread():
        return _singular_values(list(matrices), fresh_init, cache or _CACHE)


def _singular_values(mats: list[WeightMatrix], fresh_init: bool, cache: SpectrumCache) -> list[torch.Tensor]:
    result: list[torch.Tensor | None] = [None] * len(mats)
    exact: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, mat in enumerate(mats):
        w = mat.weight.float()
        if fresh_init:
            std = float(w.std())
            if std == 0.0:
                result[i] = torch.zeros(min(w.shape))
                continue
            if looks_iid(w, std):
                result[i] = std * cache.reference(*w.shape)
                continue
        exact[tuple(w.shape)].append(i)
    for idx in exact.values():
        stacked = torch.stack([mats[i].weight.float() for i in idx])
        for i, s in zip(idx, svdvals(stacked), strict=True):
            result[i] = s
    assert all(r is not None for r in result)
    return result  # type: ignore[return-value]


def sum_by_layer(matrices: Iterable[WeightMatrix], values: Iterable[float]) -> dict[str, dict[int, float]]:
    """Add one value per matrix into ``{"attention": {layer: c}, "ffn": {layer: c},
    "embedding": {0: c}}``."""
    caps: dict[str, dict[int, float]] = {g: defaultdict(float) for g in (*GROUPS, EMBEDDING)}
    for mat, value in zip(matrices, values, strict=True):
        caps[mat.group][mat.layer] += float(value)
    return {g: dict(v) for g, v in caps.items()}


def layer_capacities(
    model: nn.Module, statistic: str = "nuclear", fresh_init: bool = False
) -> dict[str, dict[int, float]]:
    """Capacity of each sub-module of each layer: the statistic summed over its matrices.

    Returns ``{"attention": {layer: c}, "ffn": {layer: c}, "embedding": {0: c}}``; a layer
    whose mixer has no weights (a parameter-free token mixer) has no attention entry, i.e.
    capacity 0.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown capacity statistic '{statistic}'; expected one of {list(STATISTICS)}")
    fn = STATISTICS[statistic]
    mats = transformer_matrices(model)
    return sum_by_layer(mats, (fn(s.double()) for s in singular_values(mats, fresh_init)))
