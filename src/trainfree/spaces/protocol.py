"""What a model built by a space offers the data-dependent proxies: :class:`ProxyModel`.

The structural convention (``model.embedding``, ``model.blocks[i].attn`` / ``.ffn``, see
``spaces/base.py``) is enough for the proxies that only read weights. The proxies that run the
model (``proxies/_lm.py`` and the files that use it) need a few more answers that only the
model knows: its language-modelling loss, its output logits, where its attention probabilities
and its feed-forward nonlinearity pass, which projections are per-head. Each model class
answers them itself, so that no proxy sniffs attribute names of a particular space.

A new space's model implements these members; :func:`record_forward` is the helper that
turns "the output (or input) of these sub-modules" into tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ProxyModel(Protocol):
    """The members the data-dependent proxies use, beyond the structural convention.

    ``causal`` is true for next-token language models (GPT-2, Transformer-XL) and false for
    encoders (FlexiBERT); ``time_major`` says that the activations recorded inside the model
    are ``[T, B, ...]`` (Transformer-XL) rather than ``[B, T, ...]``.
    """

    embedding: nn.Module
    blocks: nn.ModuleList
    causal: bool
    time_major: bool

    def mean_lm_loss(self, ids: torch.Tensor, seed: int) -> torch.Tensor:
        """The scalar training loss of the model's own language-modelling objective on a
        token batch ``ids [B, T + 1]``: a causal model predicts ``ids[:, 1:]`` from
        ``ids[:, :-1]``; an encoder reads ``ids[:, :-1]`` with a masked-LM objective whose
        mask is drawn from ``seed``."""
        ...

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Un-normalised output logits ``[N, classes]`` of hidden states ``[..., d]`` (the
        output of ``forward``), without a softmax."""
        ...

    def token_embedding(self) -> nn.Module:
        """The module whose output is the token embedding, before positions are added."""
        ...

    def position_table(self) -> nn.Embedding | None:
        """The learned position table, or None when positions have no parameters."""
        ...

    def attention_probabilities(
        self, input_ids: torch.Tensor, include_transforms: bool = False
    ) -> list[torch.Tensor]:
        """One forward pass of ``input_ids [B, T]``; every layer's attention probabilities
        ``[B, h, T, K]`` in layer order. ``include_transforms`` also returns the softmax of
        parameter-free token mixers that compute one (FlexiBERT's Fourier/DCT layers)."""
        ...

    def head_projections(self) -> list[nn.Linear]:
        """The per-head projections of every token mixer (queries, keys, values and their
        variants), not the output projection, in module order."""
        ...

    def ffn_activations(self) -> list[nn.Module]:
        """Per layer, the modules whose output is positive exactly where the feed-forward
        nonlinearity's output is (one module may be called several times per layer)."""
        ...


def record_forward(
    modules: Sequence[nn.Module], run: Callable[[], Any], what: str = "output"
) -> list[torch.Tensor]:
    """Call ``run()`` with forward hooks on ``modules``; their outputs (or first inputs,
    ``what="input"``), detached, in call order. The hooks are removed afterwards."""
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        seen.append((args[0] if what == "input" else output).detach())

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen
