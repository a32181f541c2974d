"""The llama.cpp backend (``--backend llamacpp``): generation measured in the runtime that
laptops and phones run, from a GGUF file in the weight format asked for.

One measurement, in a fresh worker as every other: the model is built with its seeded random
weights (timings do not depend on their values), written as a GGUF file and quantized by
llama.cpp (:mod:`trainfree.gguf.writer`, ``--quantize none|f16|q8_0|q4_k_m``; ``none``
is float32), read by llama.cpp (no mmap: the weights are in memory before the timing starts,
the same way every time) and measured as ``llama-bench`` measures, through llama-cpp-python's
C API (``llama_decode``), with ``P`` = ``prompt_len``, ``C`` = ``context``, ``N`` =
``new_tokens`` on a seeded random sequence of ``C`` tokens:

- **pp** (``prefill_ms``): the ``P``-token prompt decoded into an empty KV cache as one batch;
- **tg** (``decode_ms_per_token``, the ``latency_*`` fields): the cache cut back to ``C - N``
  tokens, then ``N`` single-token decodes, reported per token, at context ``C`` (llama-bench's
  ``tg`` at depth ``C - N``);
- **memory at C** (``memory_mb``): the GGUF weights as llama.cpp holds them
  (``llama_model_size``: ``weights_mb``) plus the peak resident memory added by creating the
  context and filling its cache to ``C`` (``activation_mb``: the KV cache and compute buffers);
- **KV cache** (``kv_cache_mb``): analytic, ``2 L kv_heads head_dim C`` float16 values (llama.cpp's
  default cache type).

The context is llama.cpp's defaults except: ``n_ctx = C``, ``n_batch = P``, ``n_ubatch =
min(P, 512)`` and ``threads`` for both phases; flash attention ``auto`` (llama-bench's default).
``weights_format`` records the tensor types of the file (and how many fell back to another
type). Timing is :func:`trainfree.hardware.timing.time_runs`, as the other backends: on-CPU
time on one thread, adaptive repeats, the median.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from trainfree.hardware.memory_probes import cpu_peak_probe, steady_allocator
from trainfree.hardware.profiler import HardwareSettings, Measurement
from trainfree.hardware.timing import reference_ms, time_runs

#: ``--quantize`` values of this backend -> the GGUF weight format (``none``: float32)
FORMATS = {"none": "f32", "f16": "f16", "q8_0": "q8_0", "q4_k_m": "q4_k_m"}
#: llama.cpp's largest micro-batch by default (``n_ubatch``)
UBATCH = 512
#: the spaces whose models llama.cpp runs, and why the others are refused
SUPPORTED = ("llama",)
UNSUPPORTED = {
    "gpt2": "its LTS GPT-2 models have per-layer widths and an adaptive input embedding and "
    "softmax, which llama.cpp's GPT-2 graph (one width for every layer, a plain tied "
    "embedding) cannot hold; measure the llama space in llama.cpp",
}


def space_error(name: str) -> str | None:
    """Why the models of space ``name`` cannot be measured in llama.cpp (None: they can)."""
    if name in SUPPORTED:
        return None
    why = UNSUPPORTED.get(name, "trainfree writes GGUF files of the llama space only")
    return f"backend llamacpp cannot run space {name}: {why}"


def llamacpp_error(space: Any, config: Any, settings: Any) -> str | None:
    """One line saying why ``config`` cannot be measured in llama.cpp (None: it can)."""
    from trainfree.gguf.layout import quantization_error
    from trainfree.hardware.generation import generation_error

    return (
        space_error(space.name)
        or generation_error(space, config, settings)
        or quantization_error(config, FORMATS[settings.quantize])
    )


def kv_cache_mb(space: Any, config: Any, settings: Any) -> float:
    return float(space.kv_cache_mb(config, settings.context, settings.batch_size, settings.kv_bytes))


# ----------------------------------------------------------------- a llama.cpp context
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


# ----------------------------------------------------------------- the measurement
def measure_session(s: Session, tokens: list[int], settings: HardwareSettings) -> dict[str, Any]:
    """pp, tg and the memory at ``C`` of a loaded session (module docstring), as
    :class:`~trainfree.hardware.profiler.Measurement` fields (``weights_mb`` aside)."""
    P, C, N = settings.prompt_len, settings.context, settings.new_tokens
    top = settings.max_repeats or settings.repeats
    reference = reference_ms if settings.device == "cpu" else None

    def fill() -> None:
        s.keep(0)
        for start in range(0, C - N, P):
            s.decode(tokens[start : min(start + P, C - N)])

    def generate() -> None:
        s.keep(C - N)
        for t in tokens[C - N : C]:
            s.decode([t])

    method, start, stop = cpu_peak_probe()
    t0 = time.perf_counter()
    start()
    fill()
    generate()
    added_mb = stop()
    seconds_memory = time.perf_counter() - t0
    t0 = time.perf_counter()
    steady_allocator()
    prompt = tokens[:P]

    def prefill() -> None:
        s.keep(0)
        s.decode(prompt)

    pp = time_runs(prefill, lambda: None, settings.warmup, settings.repeats, top, settings.clock, reference)
    fill()
    tg = time_runs(generate, lambda: None, settings.warmup, settings.repeats, top, settings.clock, reference)
    summary = tg.summary()
    for key in ("latency_ms", "latency_p25_ms", "latency_p75_ms", "latency_min_ms"):
        summary[key] /= N
    return {
        **summary,
        "decode_ms_per_token": summary["latency_ms"],
        "prefill_ms": pp.summary()["latency_ms"],
        "prefill_spread": pp.spread(),
        "activation_mb": float(added_mb),
        "memory_method": f"{method} (llama.cpp)",
        "seconds_memory": seconds_memory,
        "seconds_latency": time.perf_counter() - t0,
    }


def profile_llamacpp(
    space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
) -> Measurement:
    """``profiler.profile_here`` of ``backend="llamacpp"``: build, write the GGUF file,
    quantize, load it in llama.cpp, measure (module docstring)."""
    import torch

    from trainfree.gguf.writer import write_gguf

    reason = llamacpp_error(space, config, settings)
    if reason:
        return Measurement(ok=False, error=reason)
    torch.set_num_threads(settings.threads)
    tokens = [int(t) for t in space.example_input(config, 1, settings.context, seed=seed)[0]]
    with tempfile.TemporaryDirectory(prefix="trainfree-gguf-") as tmp:
        path = Path(tmp) / "model.gguf"
        model = space.build(config, seed=seed).eval()
        written = write_gguf(config, model, path, FORMATS[settings.quantize], threads=settings.threads)
        del model
        gc.collect()
        steady_allocator()
        with session(path, settings.context, settings.prompt_len, settings.threads) as s:
            path.unlink()  # read into memory: the file is no longer needed
            s.decode(tokens[:1])  # lazy initialisation, not counted
            seconds_setup = time.perf_counter() - t_setup
            fields = measure_session(s, tokens, settings)
            weights_mb = s.weights_bytes / 2**20
    return Measurement(
        ok=True,
        memory_mb=float(weights_mb + fields["activation_mb"]),
        weights_mb=float(weights_mb),
        kv_cache_mb=kv_cache_mb(space, config, settings),
        seconds_setup=seconds_setup,
        measured_at=time.time(),
        weights_format=written.summary(),
        **fields,
    )


def installed() -> str | None:
    """The installed llama-cpp-python version (read without importing it), or None."""
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("llama-cpp-python")
    return None


__all__ = ["FORMATS", "Session", "installed", "llamacpp_error", "profile_llamacpp", "session"]
