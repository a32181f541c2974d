"""llama.cpp's quantizer and log, through llama-cpp-python's C API.

``llama_model_quantize`` is what the ``llama-quantize`` tool runs: the file is read, each
tensor's type chosen by llama.cpp's rules for the requested ``llama_ftype`` (Q4_K_M: Q4_K with
Q6_K for half of ``attn_v``/``ffn_down`` and for ``output``), quantized and written. llama.cpp
logs every tensor; the log is captured instead of printed, and its last lines are the reason
given when the quantizer fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError

#: llama.cpp's count of tensors whose rows did not fit the requested type's block
_FALLBACK = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback quantization")


@contextlib.contextmanager
def captured_log() -> Iterator[list[str]]:
    """llama.cpp's log lines while the block runs, kept in a list instead of printed."""
    import llama_cpp

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def keep(level: int, text: bytes, user_data: Any) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(_default_callback(), ctypes.c_void_p(0))


def _default_callback() -> Any:
    """llama-cpp-python's own log callback (it honours ``Llama(verbose=...)``)."""
    from llama_cpp import _logger

    return _logger.llama_log_callback


def quiet() -> None:
    """Keep llama.cpp's log to errors (llama-cpp-python's ``verbose=False`` level)."""
    from llama_cpp import _logger

    _logger.set_verbose(False)


def quantize_file(source: Path, out: Path, quant: Any, threads: int = 1) -> int:
    """Quantize the GGUF file ``source`` into ``out`` (``quant``: a
    :class:`~trainfree.gguf.layout.Quantization`); the number of tensors that fell
    back to another type. A failure is one line with llama.cpp's reason."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = quant.ftype
    params.nthread = max(1, int(threads))
    with captured_log() as log:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    text = "".join(log)
    if code != 0:
        reason = [line.strip() for line in text.splitlines() if line.strip()][-2:]
        raise TrainfreeError(f"llama.cpp could not quantize to {quant.name}: {' '.join(reason) or code}")
    found = _FALLBACK.search(text)
    return int(found.group(1)) if found else 0
