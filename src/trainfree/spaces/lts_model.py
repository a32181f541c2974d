"""The input and output layers both LiteTransformerSearch models share, as PyTorch modules.

* :class:`AdaptiveEmbedding` (Baevski & Auli 2019): frequent tokens get wide vectors, rarer
  clusters narrower ones, each projected to ``d_model``;
* :class:`ProjectedAdaptiveLogSoftmax` (Grave et al. 2017): the output layer, whose weight
  tables *are* the embedding's (tied), and whose projections are tied per cluster.

Both follow archai's / NVIDIA's layout and parameter names. Shapes: ``N`` tokens (flattened
batch), ``d_model`` hidden width, ``d_i`` width of cluster ``i``, ``n_i`` its number of tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.spaces.lts_config import LTSConfig


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


class AdaptiveSoftmaxLM(nn.Module):
    """What the two LTS language models share for proxies
    (:class:`~trainfree.spaces.protocol.ProxyModel`): a causal LM objective and output logits
    through the tied adaptive softmax ``self.head``. Subclasses define ``lm_loss``."""

    causal = True
    time_major = False
    head: ProjectedAdaptiveLogSoftmax

    def lm_loss(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood ``[B, T]``; ``labels`` are the next tokens."""
        raise NotImplementedError

    def mean_lm_loss(self, ids: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Mean next-token negative log-likelihood of ``ids [B, T + 1]`` (``seed`` is unused:
        the causal objective draws nothing)."""
        return self.lm_loss(ids[:, :-1], ids[:, 1:]).mean()

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The softmax's un-normalised head-cluster logits ``[N, r_0 + K - 1]`` (what archai's
        synflow scores)."""
        return self.head.head_logits(hidden.reshape(-1, hidden.shape[-1]))
