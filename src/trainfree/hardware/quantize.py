"""Int8 weights for a measurement: PyTorch's dynamic quantization of every ``nn.Linear``.

``--quantize int8`` measures the model as a CPU deployment without a separate runtime would
run it: every ``nn.Linear`` stores int8 weights (per output channel scales) and quantises its
input on the fly (``torch.ao.quantization.quantize_dynamic``, FBGEMM / oneDNN kernels);
embeddings, norms and attention stay float32. Why this and not ONNX Runtime's dynamic
quantization: the generation measurement times transformers' own ``generate`` path (its
``DynamicCache`` and SDPA attention), which an ONNX graph with past key values would replace
by a different program; PyTorch's quantised Linear keeps the same program with int8 matrix
products. docs/llama.md gives the figures. A tied head is quantised as its own Linear copy
(the embedding lookup keeps float32), so an int8 model with tied embeddings holds both.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """``model`` with every ``nn.Linear`` replaced by its dynamically quantised int8 version."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)


def packed_weights_bytes(model: nn.Module) -> int:
    """Bytes of the packed int8 weights (and their float biases and scales) of dynamically
    quantised Linears, which ``model.parameters()`` does not list."""
    total = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and hasattr(module, "_packed_params"):
            w = weight()
            total += w.numel() * w.element_size()
            if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                total += w.q_per_channel_scales().numel() * 8 + w.q_per_channel_zero_points().numel() * 8
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            if bias is not None:
                total += bias.numel() * bias.element_size()
    return total


def as_measured(model: nn.Module, settings: Any) -> tuple[nn.Module, float]:
    """``model`` with the weights ``settings.quantize`` asks for, and their size in MB (the
    parameters, plus the packed int8 weights that ``parameters()`` does not list)."""
    if getattr(settings, "quantize", "none") == "int8":
        model = quantize_int8(model)
    dense = sum(p.numel() * p.element_size() for p in model.parameters())
    return model, (dense + packed_weights_bytes(model)) / 2**20
