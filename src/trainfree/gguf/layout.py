"""What a GGUF file of a ``llama`` config holds, from the config alone: every tensor's name,
shape and the ggml type llama.cpp's quantizer gives it, hence the weights' exact size.

The types follow llama.cpp's rules for the Llama architecture (``src/llama-quant.cpp``,
``llama_tensor_get_type_impl`` and ``tensor_type_fallback``, llama-cpp-python 0.3.36):

- 1-D tensors (the RMSNorm weights) stay F32; ``f32``/``f16`` files hold every matrix in that
  type (as ``convert_hf_to_gguf.py --outtype`` writes them);
- ``q8_0``: every matrix Q8_0;
- ``q4_k_m``: Q4_K, except ``attn_v`` and ``ffn_down`` in the layers ``use_more_bits`` picks
  (the first and last eighth, and every third between) and the output matrix (the token table
  when tied), which get Q6_K; an output matrix whose rows are not a multiple of 256 gets Q8_0;
- a row length not divisible by the type's block falls back: Q4_K -> Q5_0, Q6_K -> Q8_0, and
  a row not divisible by 32 to F16.

``weights_bytes`` equals llama.cpp's ``llama_model_size`` of the written file (tested), so a
cost model predicts the memory of a quantized model without writing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: ggml type -> (bytes per block, values per block)
TYPE_SIZE = {
    "F32": (4, 1),
    "F16": (2, 1),
    "Q8_0": (34, 32),
    "Q5_0": (22, 32),
    "Q4_K": (144, 256),
    "Q6_K": (210, 256),
}
#: the types a row too short for a 256-value block falls back to
FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}


@dataclass(frozen=True)
class Quantization:
    """One weight format of a GGUF file."""

    name: str  # as on the command line
    ftype: int  # llama.cpp's llama_ftype (LLAMA_FTYPE_ALL_F32, _MOSTLY_F16, _Q8_0, _Q4_K_M)
    block: int  # the block (values) its main type's rows must be a multiple of
    main: str  # its main ggml type


#: the weight formats, in llama.cpp's names (``llama-quantize`` spells them Q8_0, Q4_K_M)
QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("f32", 0, 1, "F32"),
        Quantization("f16", 1, 1, "F16"),
        Quantization("q8_0", 7, 32, "Q8_0"),
        Quantization("q4_k_m", 15, 256, "Q4_K"),
    )
}
#: the smallest block of any quantized type: a row not divisible by it cannot be quantized
SMALLEST_BLOCK = 32


def quantization_error(arch: Any, quant: str) -> str | None:
    """Why llama.cpp could not quantize ``arch`` to ``quant`` (None: it can). A row that is not
    a multiple of the main type's block is quantized to a smaller-block type (Q4_K -> Q5_0:
    what every published SmolLM2 Q4_K_M file holds), which is accepted; a row not divisible
    by 32 fits no quantized type and would stay F16: refused."""
    if QUANTIZATIONS[quant].block == 1:
        return None
    widths = {
        "hidden_size": arch.hidden_size,
        "num_attention_heads x head_dim": arch.q_width,
        "intermediate_size": arch.intermediate_size,
    }
    for name, width in widths.items():
        if width % SMALLEST_BLOCK:
            return (
                f"{quant}: {name} = {width} is not a multiple of {SMALLEST_BLOCK}, the smallest block "
                "of llama.cpp's quantized types (those matrices would stay F16)"
            )
    return None


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's choice of the layers that get more bits in the ``_M`` mixtures."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fits(row: int, ggml_type: str) -> bool:
    return row % TYPE_SIZE[ggml_type][1] == 0


def _type(quant: str, role: str, layer: int, n_layers: int, row: int) -> str:
    """The ggml type of one matrix (``role``: its GGUF name without ``blk.N.``/``.weight``)."""
    q = QUANTIZATIONS[quant]
    if q.block == 1:
        return q.main
    chosen = q.main
    if quant == "q4_k_m":
        if role == "output":
            return "Q6_K" if _fits(row, "Q6_K") else "Q8_0"  # never falls back further here
        if role in ("attn_v", "ffn_down") and use_more_bits(layer, n_layers):
            chosen = "Q6_K"
    if not _fits(row, chosen):
        chosen = FALLBACK.get(chosen, chosen)
        if not _fits(row, chosen):
            chosen = "F16"
    return chosen


def tensors(arch: Any, quant: str) -> list[tuple[str, tuple[int, ...], str]]:
    """``(GGUF name, shape [rows, row length], ggml type)`` of every tensor, in file order."""
    L, d, f = arch.num_hidden_layers, arch.hidden_size, arch.intermediate_size
    q, k = arch.q_width, arch.kv_width
    tied = arch.tie_word_embeddings
    table = _type(quant, "output" if tied else "token_embd", 0, L, d)  # tied: the output's rules
    out = [("token_embd.weight", (arch.vocab_size, d), table)]
    for i in range(L):
        for role, shape in (
            ("attn_norm", (d,)),
            ("attn_q", (q, d)),
            ("attn_k", (k, d)),
            ("attn_v", (k, d)),
            ("attn_output", (d, q)),
            ("ffn_norm", (d,)),
            ("ffn_gate", (f, d)),
            ("ffn_up", (f, d)),
            ("ffn_down", (d, f)),
        ):
            ggml = "F32" if len(shape) == 1 else _type(quant, role, i, L, shape[-1])
            out.append((f"blk.{i}.{role}.weight", shape, ggml))
    out.append(("output_norm.weight", (d,), "F32"))
    if not tied:
        out.append(("output.weight", (arch.vocab_size, d), _type(quant, "output", 0, L, d)))
    return out


def weights_bytes(arch: Any, quant: str) -> int:
    """Bytes of every tensor of the file in ``quant`` (``llama_model_size``)."""
    total = 0
    for _, shape, ggml in tensors(arch, quant):
        size, block = TYPE_SIZE[ggml]
        values = 1
        for n in shape:
            values *= n
        total += values // block * size
    return total
