"""What a decoder costs as it generates: prefill, decode per token, memory at the context.

A deployed decoder reads a prompt once and then generates token by token from its KV cache;
on a laptop or a phone the costs that decide are those llama.cpp's ``llama-bench`` reports as
**pp** (prompt processing) and **tg** (text generation). With ``P`` the prompt, ``C`` the
context and ``N`` the generated tokens (``HardwareSettings.prompt_len``, ``context``,
``new_tokens``), one measurement takes, on a seeded random token sequence of ``C`` tokens:

- **memory at C** (``memory_mb``): the peak resident memory, weights included, of filling the
  cache with the first ``C - N`` tokens in prompts of ``P`` tokens (chunked prefill, as a
  server reads a long prompt) and then generating the last ``N`` one at a time; so it holds
  the weights, the KV cache at ``C`` and the largest activations of either phase.
  ``activation_mb`` is what the run added to the weights (the cache included);
- **prefill** (``prefill_ms``): one ``P``-token prompt into an empty cache, logits of its last
  position only (what ``generate`` computes), timed like a forward pass
  (:func:`trainfree.hardware.timing.time_runs`: on-CPU time on one thread, adaptive repeats);
- **decode** (``decode_ms_per_token``, also the ``latency_*`` fields): the cache cropped back
  to ``C - N`` tokens, then ``N`` single-token steps, so the ``N`` steps that reach context
  ``C``; each timed run is those ``N`` steps, reported per token. The next token fed is the
  sequence's own (teacher forcing), not the argmax: the same work without the sampling;
- **the KV cache** (``kv_cache_mb``): analytic, ``2 L kv_heads head_dim C`` float32 values
  (``space.kv_cache_mb``), which equals the tensors transformers' cache holds (tested).

A space that can generate offers ``new_cache(model)``, ``cached_step(model, ids, cache)``
(logits of the last position) and ``crop_cache(cache, length)``; a space without them is
refused with one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from trainfree.hardware.measurement import Measurement
from trainfree.hardware.memory_probes import cpu_peak_probe, cuda_peak_probe
from trainfree.hardware.quantize import as_measured
from trainfree.hardware.settings import HardwareSettings
from trainfree.hardware.timing import reference_ms, time_runs

#: the methods a space implements to be measured generating
GENERATION_METHODS = ("new_cache", "cached_step", "crop_cache", "kv_cache_mb")


def can_generate(space: Any) -> bool:
    return all(callable(getattr(space, m, None)) for m in GENERATION_METHODS)


def generation_error(space: Any, config: Any, settings: Any) -> str | None:
    """One line saying why ``config`` cannot be measured generating (None: it can)."""
    if not can_generate(space):
        return f"space {space.name} cannot be measured generating: its models have no KV cache"
    positions = space.max_seq_len(config)
    if settings.context > positions:
        return f"context {settings.context} exceeds the {positions} positions of this architecture"
    return None


def _fill(space: Any, model: Any, ids: torch.Tensor, chunk: int) -> Any:
    """A cache holding ``ids``, read in prompts of ``chunk`` tokens."""
    cache = space.new_cache(model)
    for start in range(0, ids.size(1), chunk):
        space.cached_step(model, ids[:, start : start + chunk], cache)
    return cache


def _decode(space: Any, model: Any, ids: torch.Tensor, cache: Any) -> None:
    for t in range(ids.size(1)):
        space.cached_step(model, ids[:, t : t + 1], cache)


def measure_generation(
    space: Any,
    config: Any,
    model: Any,
    ids: torch.Tensor,
    settings: Any,
    probe: tuple[str, Callable, Callable],
) -> dict[str, Any]:
    """The generation figures of ``model`` on ``ids [B, C]`` (see the module docstring), as
    :class:`~trainfree.hardware.measurement.Measurement` fields (``weights_mb`` aside)."""
    P, C, N = settings.prompt_len, settings.context, settings.new_tokens
    top = settings.max_repeats or settings.repeats
    reference = reference_ms if settings.device == "cpu" else None
    method, start, stop = probe
    t0 = time.perf_counter()
    start()
    cache = _fill(space, model, ids[:, : C - N], P)
    _decode(space, model, ids[:, C - N :], cache)
    added_mb = stop()
    seconds_memory = time.perf_counter() - t0

    t0 = time.perf_counter()
    prompt = ids[:, :P]

    def prefill() -> None:
        space.cached_step(model, prompt, space.new_cache(model))

    pp = time_runs(prefill, lambda: None, settings.warmup, settings.repeats, top, settings.clock, reference)

    def generate() -> None:
        space.crop_cache(cache, C - N)
        _decode(space, model, ids[:, C - N :], cache)

    tg = time_runs(generate, lambda: None, settings.warmup, settings.repeats, top, settings.clock, reference)
    summary = tg.summary()
    for key in ("latency_ms", "latency_p25_ms", "latency_p75_ms", "latency_min_ms"):
        summary[key] /= N  # per generated token
    return {
        **summary,
        "decode_ms_per_token": summary["latency_ms"],
        "prefill_ms": pp.summary()["latency_ms"],
        "prefill_spread": pp.spread(),
        "kv_cache_mb": float(space.kv_cache_mb(config, C, ids.size(0))),
        "activation_mb": float(added_mb),
        "memory_method": method,
        "seconds_memory": seconds_memory,
        "seconds_latency": time.perf_counter() - t0,
    }


def profile_generation(
    space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
) -> Measurement:
    """Generation measured in PyTorch (the torch and onnx backends' ``mode="generate"``):
    build, quantise if asked, measure."""

    reason = generation_error(space, config, settings)
    if reason:
        return Measurement(ok=False, error=reason)
    torch.set_num_threads(settings.threads)
    model = space.build(config, seed=seed).eval()
    model, weights_mb = as_measured(model, settings)
    ids = space.example_input(config, settings.batch_size, settings.context, seed=seed)
    if settings.device == "cuda":
        if not torch.cuda.is_available():
            return Measurement(ok=False, error="device cuda requested but torch sees no CUDA device")
        model, ids = model.to("cuda"), ids.to("cuda")
    probe = cuda_peak_probe() if settings.device == "cuda" else cpu_peak_probe()
    with torch.inference_mode():
        space.cached_step(model, ids[:, :1], space.new_cache(model))  # lazy initialisation, not counted
        seconds_setup = time.perf_counter() - t_setup
        fields = measure_generation(space, config, model, ids, settings, probe)
    return Measurement(
        ok=True,
        memory_mb=float(weights_mb + fields["activation_mb"]),
        weights_mb=float(weights_mb),
        seconds_setup=seconds_setup,
        measured_at=time.time(),
        **fields,
    )
