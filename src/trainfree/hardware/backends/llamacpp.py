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
- **memory at C** (``memory_mb``): the peak resident memory added from before llama.cpp reads
  the file until its cache is filled to ``C`` and ``N`` tokens are generated: the weights as
  llama.cpp holds them (``llama_model_size``: ``weights_mb``), the context's KV cache and
  compute buffers, and the rest (``activation_mb`` = memory - weights). The probe starts
  before the context is created because llama.cpp allocates and clears the whole KV cache
  there: started after it, as it once was, it saw 0.9 MB of an 8 MB cache (docs/llamacpp.md);
- **KV cache** (``kv_cache_mb``): analytic, ``2 L kv_heads head_dim C`` float16 values (llama.cpp's
  default cache type).

The context is llama.cpp's defaults except: ``n_ctx = C``, ``n_batch = P``, ``n_ubatch =
min(P, 512)`` and ``threads`` for both phases; flash attention ``auto`` (llama-bench's default).
``weights_format`` records the tensor types of the file (and how many fell back to another
type). Timing is :func:`trainfree.hardware.timing.time_runs`, as the other backends: on-CPU
time on one thread, adaptive repeats, the median.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from trainfree.errors import ConfigError
from trainfree.gguf.session import Session, session
from trainfree.hardware.measurement import MB, Measurement
from trainfree.hardware.settings import Backend, HardwareSettings, register_backend

#: ``--quantize`` values of this backend -> the GGUF weight format (``none``: float32)
FORMATS = {"none": "f32", "f16": "f16", "q8_0": "q8_0", "q4_k_m": "q4_k_m"}
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


def cost_features(space: Any, config: Any, settings: Any) -> dict[str, float]:
    """What llama.cpp's costs follow, per target (docs/llamacpp.md "The cost model"):

    - ``latency_ms:`` (tg, per token at ``C``): the elements of every matrix a step streams
      (the decoder's and the output's), per ggml type of the file (:mod:`trainfree.gguf.layout`:
      a Q4_K value dequantizes at another speed than a Q5_0 or a Q8_0 one), the layers, and
      flash attention over ``C`` keys per query head and per KV head, **per head size**: its
      CPU kernel's cost per key does not follow the head size (measured in docs/llamacpp.md:
      32 costs the most per query head, 128 by far the most per KV head), so each size of
      the space's value set gets its own weight;
    - ``prefill_ms:`` (pp, ``P`` tokens in one batch): each type's elements times ``P``, the
      output matrix once (the last token's logits), attention over the causal half of
      ``P x P`` per query head, per head size, and the element-wise work;
    - ``activation_mb:`` (memory beyond the weights): the KV cache, the compute buffer of a
      ``P``-token batch (its widest tensors) and the vocabulary (llama.cpp keeps every
      token's text and score)."""
    from trainfree.gguf.layout import TYPE_SIZE, tensors

    a, P, C = config, settings.prompt_len, settings.context
    L, H, K, d = a.num_hidden_layers, a.num_attention_heads, a.num_key_value_heads, a.hidden_size
    streamed = dict.fromkeys(TYPE_SIZE, 0.0)
    batched = dict.fromkeys(TYPE_SIZE, 0.0)
    head = 0.0
    for name, shape, ggml in tensors(a, FORMATS[settings.quantize]):
        if len(shape) != 2:
            continue
        elements = float(shape[0] * shape[1])
        if name.startswith("blk."):
            streamed[ggml] += elements
            batched[ggml] += elements * P
        elif name == "output.weight" or a.tie_word_embeddings:  # the output matrix
            streamed[ggml] += elements
            head = elements
    sizes = sorted({int(h) for h in space.values.get("head_dim", [a.head_dim])})
    size = min(sizes, key=lambda h: (abs(h - a.head_dim), h))  # a reference's head size
    out = {f"latency_ms:weights_{t}": v for t, v in streamed.items()}
    out.update({f"prefill_ms:weights_{t}": v for t, v in batched.items()})
    for h in sizes:
        on = float(h == size)
        out[f"latency_ms:attention_hd{h}"] = on * L * H * C
        out[f"latency_ms:kv_heads_hd{h}"] = on * L * K * C
        out[f"prefill_ms:attention_hd{h}"] = on * L * H * P * (P + 1) / 2
    out["latency_ms:layers"] = out["prefill_ms:layers"] = float(L)
    out["prefill_ms:head"] = head
    out["prefill_ms:elementwise"] = float(L * P * (4 * d + a.intermediate_size + a.q_width))
    out["activation_mb:kv_cache"] = kv_cache_mb(space, config, settings)
    out["activation_mb:batch_ffn"] = float(P * a.intermediate_size)
    out["activation_mb:batch_attention"] = float(P * (a.q_width + 2 * a.kv_width))
    out["activation_mb:batch_hidden"] = float(P * d)
    out["activation_mb:vocab"] = float(a.vocab_size)
    return out


@register_backend("llamacpp")
class LlamacppBackend(Backend):
    """llama.cpp through llama-cpp-python, from a GGUF file (module docstring)."""

    title = "llama.cpp"
    order = 2
    modes = ("generate",)
    modes_note = " (it measures pp and tg, as llama-bench)"
    #: the GGUF weight formats (``none``: float32)
    quantize = tuple(FORMATS)
    quantize_note = "f16, q8_0, q4_k_m: llamacpp"
    kv_bytes = 2  # llama.cpp's default cache type: float16
    runtime = ("llama-cpp-python",)
    #: the memory probe starts before the file is read: figures cached when it started after
    #: the context (which left out the KV cache) are not served
    method = "memory from load"

    def check(self, settings: HardwareSettings) -> None:
        if settings.batch_size != 1:
            raise ConfigError("batch_size", settings.batch_size, "1 with backend llamacpp (one sequence)")

    def space_error(self, space_name: str) -> str | None:
        return space_error(space_name)

    def config_error(self, space: Any, config: Any, settings: HardwareSettings) -> str | None:
        return llamacpp_error(space, config, settings)

    def weights_mb(self, config: Any, settings: HardwareSettings) -> float | None:
        """The GGUF file's tensors in its format, exactly (:mod:`trainfree.gguf.layout`)."""
        from trainfree.gguf.layout import weights_bytes

        return weights_bytes(config, FORMATS[settings.quantize]) / MB

    def cost_features(self, space: Any, config: Any, settings: HardwareSettings) -> dict[str, float] | None:
        return cost_features(space, config, settings)

    def require(self) -> None:
        from trainfree.gguf.writer import require_llamacpp

        require_llamacpp("--backend llamacpp")

    def measure(
        self, space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
    ) -> Measurement:
        return profile_llamacpp(space, config, settings, seed, t_setup)


# ----------------------------------------------------------------- the measurement
def measure_session(
    s: Session, tokens: list[int], settings: HardwareSettings, probe: tuple[str, Any] | None = None
) -> dict[str, Any]:
    """pp, tg and the memory at ``C`` of a loaded session (module docstring), as
    :class:`~trainfree.hardware.measurement.Measurement` fields (``weights_mb`` aside).
    ``probe``: ``(method, stop)`` of a memory probe started before the session was opened
    (its ``added_mb`` then counts the weights and the context too); else one starts here."""
    from trainfree.hardware.memory_probes import cpu_peak_probe, steady_allocator
    from trainfree.hardware.timing import reference_ms, time_runs

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

    t0 = time.perf_counter()
    if probe is None:
        method, start, stop = cpu_peak_probe()
        start()
    else:
        method, stop = probe
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
        "added_mb": float(added_mb),
        "memory_method": f"{method} (llama.cpp)",
        "seconds_memory": seconds_memory,
        "seconds_latency": time.perf_counter() - t0,
    }


def profile_llamacpp(
    space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
) -> Measurement:
    """Build, write the GGUF file, quantize, load it in llama.cpp, measure (module docstring)."""
    import torch

    from trainfree.gguf.writer import write_gguf
    from trainfree.hardware.memory_probes import cpu_peak_probe, steady_allocator

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
        method, start, stop = cpu_peak_probe()
        start()  # before the file is read: the weights, the context and its KV cache count
        with session(path, settings.context, settings.prompt_len, settings.threads) as s:
            path.unlink()  # read into memory: the file is no longer needed
            s.decode(tokens[:1])  # lazy initialisation, not timed
            seconds_setup = time.perf_counter() - t_setup
            fields = measure_session(s, tokens, settings, probe=(method, stop))
            weights_mb = s.weights_bytes / 2**20
    activation_mb = float(max(0.0, fields.pop("added_mb") - weights_mb))
    return Measurement(
        ok=True,
        memory_mb=float(weights_mb + activation_mb),
        activation_mb=activation_mb,
        weights_mb=float(weights_mb),
        kv_cache_mb=kv_cache_mb(space, config, settings),
        seconds_setup=seconds_setup,
        measured_at=time.time(),
        weights_format=written.summary(),
        **fields,
    )


__all__ = ["FORMATS", "LlamacppBackend", "cost_features", "llamacpp_error", "profile_llamacpp", "space_error"]
