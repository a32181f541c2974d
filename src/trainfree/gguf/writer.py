"""GGUF files of the ``llama`` space: what llama.cpp, Ollama and LM Studio load.

A model is written with ggml's own ``gguf`` package (its writer, and its tensor-name map of the
Llama architecture, ``gguf.get_tensor_name_map(MODEL_ARCH.LLAMA, L)``), as llama.cpp's
``convert_hf_to_gguf.py`` writes a ``LlamaForCausalLM``, in float32 or float16; ``q8_0`` and
``q4_k_m`` are made from the float16 file by llama.cpp's own quantizer, called through
llama-cpp-python's C API (``llama_model_quantize``). The installed llama-cpp-python does not
ship the converter script, so the conversion is done here, with two details that decide
whether llama.cpp computes what PyTorch computes:

- **rotary layout**: transformers' Llama rotates the two *halves* of each head
  (``rotate_half``), llama.cpp's rope rotates *adjacent pairs*; the converter therefore
  permutes the rows of ``q_proj`` (per query head) and ``k_proj`` (per KV head) so that each
  head's channel ``i`` and ``i + head_dim/2`` become neighbours (:func:`permute_rotary`, the
  converter's ``LlamaModel.permute``). Without it the logits differ (tested);
- **tied embeddings**: no ``output.weight`` tensor; llama.cpp then uses ``token_embd``.

The tokenizer is a choice of the space (a vocabulary size), not a trained tokenizer, and no
tokenizer is downloaded: the file carries a SentencePiece-style vocabulary of the right size
whose first 259 entries are ``<unk>``, ``<s>``, ``</s>`` and the 256 byte tokens (so any text
tokenizes, byte by byte) and whose other entries are placeholders. Replace it with the real
tokenizer's when the model is trained.

Every file is written under a temporary name in its folder and renamed into place when it is
complete: a failed or killed conversion leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainfree.errors import TrainfreeError
from trainfree.gguf.layout import QUANTIZATIONS, Quantization, quantization_error

LLAMACPP_INSTALL = "pip install 'trainfree[llamacpp]' (llama-cpp-python, gguf)"


#: SentencePiece token types (gguf.TokenType): normal, unknown, control, byte
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def require_llamacpp(what: str = "this", modules: tuple[str, ...] = ("gguf", "llama_cpp")) -> None:
    """One line saying how to install llama-cpp-python and gguf, if one is missing."""
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise TrainfreeError(f"{what} needs llama-cpp-python and gguf: {LLAMACPP_INSTALL}") from None


def check_quantization(name: str) -> Quantization:
    if name not in QUANTIZATIONS:
        raise TrainfreeError(f"--quantize {name!r}: expected one of {', '.join(QUANTIZATIONS)}")
    return QUANTIZATIONS[name]


# ------------------------------------------------------------------ tensors
def permute_rotary(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of a q or k projection from transformers' rotate-half layout to llama.cpp's
    interleaved pairs, per head (``convert_hf_to_gguf.py``'s ``LlamaModel.permute``)."""
    rows, rest = weight.shape[0], weight.shape[1:]
    return weight.reshape(heads, 2, rows // heads // 2, *rest).swapaxes(1, 2).reshape(weight.shape)


def gguf_tensors(arch: Any, model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(GGUF name, tensor)`` of every weight llama.cpp reads, in the converter's layout."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, arch.num_hidden_layers)
    out = []
    for hf_name, tensor in model.state_dict().items():
        if arch.tie_word_embeddings and hf_name == "lm_head.weight":
            continue  # tied: llama.cpp uses token_embd when there is no output tensor
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise TrainfreeError(f"GGUF export: no llama.cpp name for tensor {hf_name}")
        if hf_name.endswith("self_attn.q_proj.weight"):
            tensor = permute_rotary(tensor, arch.num_attention_heads)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            tensor = permute_rotary(tensor, arch.num_key_value_heads)
        out.append((name, tensor))
    return out


def _as_numpy(tensor: torch.Tensor, dtype: str) -> np.ndarray:
    """Norms (1-D) stay float32, as the converter keeps them; matrices in ``dtype``."""
    t = tensor.detach().to("cpu", torch.float32)
    if dtype == "f16" and t.dim() > 1:
        t = t.to(torch.float16)
    return t.contiguous().numpy()


# ------------------------------------------------------------------ metadata
def placeholder_vocab(size: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece vocabulary of ``size`` entries: ``<unk>``, ``<s>``, ``</s>``, the 256
    byte tokens, then placeholders (module docstring)."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
    types = [_UNKNOWN, _CONTROL, _CONTROL, *([_BYTE] * 256)]
    tokens += [f"<tok_{i}>" for i in range(len(tokens), size)]
    types += [_NORMAL] * (size - len(types))
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(size - 259)]
    return tokens[:size], scores[:size], types[:size]


def _metadata(writer: Any, arch: Any, name: str, ftype: int) -> None:
    import gguf

    writer.add_name(name)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_context_length(arch.max_position_embeddings)
    writer.add_embedding_length(arch.hidden_size)
    writer.add_block_count(arch.num_hidden_layers)
    writer.add_feed_forward_length(arch.intermediate_size)
    writer.add_head_count(arch.num_attention_heads)
    writer.add_head_count_kv(arch.num_key_value_heads)
    writer.add_key_length(arch.head_dim)
    writer.add_value_length(arch.head_dim)
    writer.add_rope_dimension_count(arch.head_dim)
    writer.add_rope_freq_base(arch.rope_theta)
    writer.add_layer_norm_rms_eps(arch.rms_norm_eps)
    writer.add_vocab_size(arch.vocab_size)
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, scores, types = placeholder_vocab(arch.vocab_size)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


# ------------------------------------------------------------------ files
@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path``, renamed to ``path`` if the block succeeds and
    removed if it does not (an exception, Ctrl-C)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_float_gguf(arch: Any, model: torch.nn.Module, path: Path, dtype: str, name: str) -> None:
    """``model`` as a float32 or float16 GGUF file at ``path`` (written atomically). Tensors
    are converted and written one at a time: the file's weights are never all in memory."""
    import gguf

    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype {dtype!r}: expected f32 or f16")
    tensors = gguf_tensors(arch, model)
    with atomic_path(Path(path)) as tmp:
        writer = gguf.GGUFWriter(tmp, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        try:
            _metadata(writer, arch, name, QUANTIZATIONS[dtype].ftype)
            for gname, t in tensors:
                np_dtype = np.float16 if dtype == "f16" and t.dim() > 1 else np.float32
                nbytes = t.numel() * np.dtype(np_dtype).itemsize
                writer.add_tensor_info(gname, tuple(t.shape), np.dtype(np_dtype), nbytes)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for _, t in tensors:
                writer.write_tensor_data(_as_numpy(t, dtype))
        finally:
            writer.close()


def write_gguf(
    arch: Any,
    model: torch.nn.Module,
    path: str | Path,
    quant: str = "f16",
    name: str = "trainfree",
    threads: int = 1,
) -> GgufFile:
    """``model`` (a ``LlamaForCausalLM`` of ``arch``) as a GGUF file in ``quant`` at ``path``.

    f32 and f16 are written directly; q8_0 and q4_k_m are quantized by llama.cpp from a
    float16 file (removed after). Nothing is left at ``path`` if anything fails."""
    q = check_quantization(quant)
    why = quantization_error(arch, quant)
    if why:
        raise TrainfreeError(why)
    require_llamacpp("a GGUF file", ("gguf",) if q.block == 1 else ("gguf", "llama_cpp"))
    path = Path(path)
    if q.block == 1:
        write_float_gguf(arch, model, path, quant, name)
        return describe_gguf(path, quant)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".trainfree-gguf-", dir=path.parent) as tmp:
        source = Path(tmp) / "f16.gguf"
        write_float_gguf(arch, model, source, "f16", name)
        return quantize_gguf(source, path, quant, threads)


def quantize_gguf(source: Path, path: Path, quant: str, threads: int = 1) -> GgufFile:
    """The float GGUF file ``source`` quantized by llama.cpp to ``quant`` at ``path``
    (written atomically)."""
    from trainfree.gguf.quantizer import quantize_file

    with atomic_path(Path(path)) as out:
        fallback = quantize_file(source, out, check_quantization(quant), threads)
    return describe_gguf(Path(path), quant, fallback)


@dataclass
class GgufFile:
    """What a written GGUF file holds."""

    path: Path
    quantize: str
    bytes: int
    tensor_types: dict[str, int]  # ggml type name -> how many tensors
    #: tensors llama.cpp's quantizer stored in another type than asked (rows not a multiple
    #: of the format's block: Q4_K -> Q5_0, Q6_K -> Q8_0)
    fallback: int = 0

    def summary(self) -> str:
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.tensor_types.items()))
        extra = f"; {self.fallback} fell back to a smaller block" if self.fallback else ""
        return f"{self.quantize} ({types}{extra})"


def describe_gguf(path: Path, quant: str, fallback: int = 0) -> GgufFile:
    """The file's size and tensor types, read back with gguf's reader."""
    import gguf

    reader = gguf.GGUFReader(path)
    types: dict[str, int] = {}
    for t in reader.tensors:
        key = t.tensor_type.name
        types[key] = types.get(key, 0) + 1
    return GgufFile(Path(path), quant, path.stat().st_size, types, fallback)
