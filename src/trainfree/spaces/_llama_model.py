"""The ``llama`` space's model: transformers' own ``LlamaForCausalLM``, answering the proxies.

:class:`LlamaLM` *is* a ``LlamaForCausalLM`` (a subclass that adds no module, parameter or
buffer and overrides no method of it): the same ``state_dict`` keys, the same forward, the
same ``generate``. It adds, as read-only properties and plain methods, what trainfree's
proxies ask of a model (``spaces/base.py``'s structural convention and
``spaces/protocol.ProxyModel``), translated to the stock attribute names:

=========================  =====================================================
trainfree                  transformers
=========================  =====================================================
``model.embedding``        ``model.model.embed_tokens`` (no position table: RoPE)
``model.blocks[i].attn``   ``model.model.layers[i].self_attn`` (q, k, v, o)
``model.blocks[i].ffn``    ``model.model.layers[i].mlp`` (gate, up, down)
``model.head``             ``model.lm_head`` (the embedding's tensor when tied)
=========================  =====================================================

``blocks`` is built on each access from views (:class:`BlockView`) that hold the stock
sub-modules; nothing is registered on the model, so saving it writes stock keys only.
Exports write a plain ``LlamaForCausalLM`` (``export/llama_export.py``).

Shapes: ``B`` batch, ``T`` tokens, ``d`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from trainfree.spaces.base import seeded
from trainfree.spaces.llama_config import LlamaArch, hf_config_kwargs


class BlockView(nn.Module):
    """One decoder layer seen through trainfree's convention: ``attn`` and ``ffn`` are the
    layer's own ``self_attn`` and ``mlp`` (the same objects, not copies)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.attn = layer.self_attn
        self.ffn = layer.mlp


class LlamaLM(LlamaForCausalLM):
    """A stock ``LlamaForCausalLM`` that also answers trainfree's proxies (see the module
    docstring)."""

    causal = True
    time_major = False

    # ------------------------------------------------- the structural convention
    @property
    def embedding(self) -> nn.Embedding:
        return self.model.embed_tokens

    @property
    def blocks(self) -> nn.ModuleList:
        return nn.ModuleList(BlockView(layer) for layer in self.model.layers)

    @property
    def head(self) -> nn.Linear:
        return self.lm_head

    # ------------------------------------------------- what proxies ask (ProxyModel)
    def mean_lm_loss(self, ids: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Mean next-token negative log-likelihood of ``ids [B, T + 1]`` (reads the first
        ``T``, predicts the last ``T``; ``seed`` unused: nothing is drawn)."""
        logits = self(input_ids=ids[:, :-1], use_cache=False).logits  # [B, T, V]
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``lm_head`` logits ``[N, V]`` of hidden states ``[..., d]``."""
        return self.lm_head(hidden.reshape(-1, hidden.shape[-1]))

    def token_embedding(self) -> nn.Module:
        return self.model.embed_tokens

    def position_table(self) -> None:
        """Rotary positions have no parameters."""
        return None

    def attention_probabilities(
        self, input_ids: torch.Tensor, include_transforms: bool = False
    ) -> list[torch.Tensor]:
        """Every layer's attention probabilities ``[B, h, T, T]``: one forward pass with
        transformers' eager attention (SDPA returns no probabilities), then back."""
        before = self.config._attn_implementation
        self.set_attn_implementation("eager")
        try:
            out = self(input_ids=input_ids, use_cache=False, output_attentions=True)
        finally:
            self.set_attn_implementation(before)
        return [a for a in out.attentions]

    def head_projections(self) -> list[nn.Linear]:
        """``q_proj``, ``k_proj`` and ``v_proj`` of every layer."""
        return [
            p
            for layer in self.model.layers
            for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)
        ]

    def ffn_activations(self) -> list[nn.Module]:
        """``mlp.gate_proj`` of each layer: SwiGLU's SiLU(gate) is positive exactly where the
        gate is (the ``up`` factor multiplies it by either sign)."""
        return [layer.mlp.gate_proj for layer in self.model.layers]


@functools.cache
def cache_kwarg(model_class: type) -> str:
    """The name under which ``forward`` takes the KV cache: ``cache`` from transformers 5.25
    on (``past_key_values`` is deprecated there), ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def hf_config(arch: LlamaArch) -> LlamaConfig:
    """The stock ``LlamaConfig`` of ``arch``."""
    return LlamaConfig(**hf_config_kwargs(arch))


@torch.no_grad()
def init_llama_(model: LlamaForCausalLM) -> None:
    """transformers' ``_init_weights`` for Llama, written out: every ``Linear`` and the
    embedding N(0, initializer_range) (no padding row: the configs carry no pad token), the
    RMSNorm weights 1, and the rotary inverse frequencies recomputed (``to_empty`` left them
    unset)."""
    std = model.config.initializer_range
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif "RMSNorm" in type(module).__name__:
            nn.init.ones_(module.weight)
    rotary = model.model.rotary_emb
    inv_freq, _ = rotary.compute_default_rope_parameters(model.config)
    rotary.inv_freq.copy_(inv_freq)
    rotary.original_inv_freq.copy_(inv_freq)


def build_llama(arch: LlamaArch, seed: int | None = 0, device: str | torch.device | None = None) -> LlamaLM:
    """Build on the meta device, then (unless ``device`` is meta) allocate and initialise.

    transformers would otherwise run PyTorch's default init of every layer and then its own
    over it: twice the random draws, which for TinyLlama's 1.1B parameters is most of the build.
    ``to_empty`` gives each tensor its own storage, so the tied head is re-tied first.
    """
    with torch.device("meta"):
        model = LlamaLM(hf_config(arch))
    device = torch.device("cpu" if device is None else device)
    if device.type == "meta":
        return model
    model.to_empty(device=device)
    model.tie_weights()
    with seeded(seed):
        init_llama_(model)
    return model


__all__ = ["BlockView", "LlamaLM", "build_llama", "cache_kwarg", "hf_config", "init_llama_"]
