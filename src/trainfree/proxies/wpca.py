"""``wpca``: W-PCA (Ma et al., "W-PCA Based Gradient-Free Proxy for Efficient Search of
Lightweight Language Models", 2024).

Parameter count times the summed "PCA dimension" of the feed-forward layers: for each layer,
the inner representation of its FFN (the input of its last Linear, ``[tokens, d_inner]``, on
the seeded random batch) is centred, and its PCA dimension is the smallest number of principal
components whose explained variance reaches ``ETA = 0.99``. A wide FFN whose units stay
decorrelated uses many components; a redundant one few. Gradient-free, one forward pass.

``w`` is the total parameter count of the built model (``space.param_counts(config).total``).
"""

from __future__ import annotations

from typing import Any

import torch

from trainfree.proxies import ProxyContext, measure
from trainfree.proxies._lm import ffn_output_linears, recorded_forward, token_batch

ETA = 0.99


def pca_dimension(x: torch.Tensor, eta: float = ETA) -> int:
    """Principal components of the rows of ``x [N, F]`` needed to explain ``eta`` of the variance."""
    x = x.double()
    s = torch.linalg.svdvals(x - x.mean(0, keepdim=True))
    var = s**2
    if var.sum() <= 0:
        return 0
    ratio = torch.cumsum(var, 0) / var.sum()
    return int((ratio < eta).sum()) + 1


@measure("wpca", needs_data=True)
def wpca(space: Any, config: Any, ctx: ProxyContext) -> float:
    """W-PCA: parameter count x summed PCA dimension (99% variance) of the FFN inner representations."""
    model = ctx.model(space, config)
    ids = token_batch(space, config, ctx)
    inner = recorded_forward(model, ffn_output_linears(model), ids, ctx.seed, what="input")
    dims = sum(pca_dimension(h.reshape(-1, h.shape[-1])) for h in inner)
    return float(space.param_counts(config).total) * float(dims)
