"""A llama.cpp model and context loaded from a GGUF file, driven through llama-cpp-python's C
API: what the llama.cpp backend measures (:mod:`trainfree.hardware.backends.llamacpp`) and what
``export --check`` compares with PyTorch (:mod:`trainfree.export.gguf_check`).

The model is read without mmap (the weights are in memory before a timing starts, the same
way every time); the context is llama.cpp's defaults except ``n_ctx``, ``n_batch``,
``n_ubatch = min(n_batch, 512)``, the threads of both phases and flash attention ``auto``
(llama-bench's default).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: llama.cpp's largest micro-batch by default (``n_ubatch``)
UBATCH = 512


_STARTED: list[bool] = []


def _start(llama_cpp: Any) -> None:
    """llama.cpp's backends initialised and its log kept to errors, once per process."""
    if not _STARTED:
        from trainfree.gguf.quantizer import quiet

        quiet()
        llama_cpp.llama_backend_init()
        _STARTED.append(True)


class Session:
    """A llama.cpp model and context, driven through llama-cpp-python's C API."""

    def __init__(self, path: Path, n_ctx: int, n_batch: int, threads: int) -> None:
        import llama_cpp

        from trainfree.gguf.quantizer import captured_log

        _start(llama_cpp)
        self.lib = llama_cpp
        self.model = self.ctx = None
        mparams = llama_cpp.llama_model_default_params()
        mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, min(n_batch, UBATCH)
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        with captured_log() as log:
            self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
            if self.model:
                self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.model or not self.ctx:
            self.close()
            last = " ".join(line.strip() for line in log[-3:])
            raise RuntimeError(f"llama.cpp could not load {path.name}: {last}")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))

    @property
    def weights_bytes(self) -> int:
        return int(self.lib.llama_model_size(self.model))

    def decode(self, tokens: Sequence[int]) -> None:
        """Read ``tokens`` after those in the cache, as one batch (logits of the last)."""
        array = (self.lib.llama_token * len(tokens))(*tokens)
        code = self.lib.llama_decode(self.ctx, self.lib.llama_batch_get_one(array, len(tokens)))
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code} (context full or out of memory)")
        self.lib.llama_synchronize(self.ctx)

    def last_logits(self) -> list[float]:
        pointer = self.lib.llama_get_logits_ith(self.ctx, -1)
        return list(pointer[: self.n_vocab])

    def keep(self, length: int) -> None:
        """Keep the first ``length`` tokens of the cache (0: empty it)."""
        if length == 0:
            self.lib.llama_memory_clear(self.memory, True)
        else:
            self.lib.llama_memory_seq_rm(self.memory, 0, length, -1)

    def close(self) -> None:
        if self.ctx:
            self.lib.llama_free(self.ctx)
        if self.model:
            self.lib.llama_model_free(self.model)
        self.ctx = self.model = None


@contextlib.contextmanager
def session(path: Path, n_ctx: int, n_batch: int, threads: int) -> Iterator[Session]:
    s = Session(path, n_ctx, n_batch, threads)
    try:
        yield s
    finally:
        s.close()
