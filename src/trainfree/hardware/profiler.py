"""Latency and peak memory of one architecture's forward pass, measured on this machine.

What is measured is ``space.inference(model, ids)`` (for the language-model spaces: hidden
states *and* output log-probabilities) on a seeded batch of random token ids, in inference
mode, with the model in eval mode:

- **latency**: ``warmup`` untimed runs, then ``repeats`` timed runs (more, up to
  ``max_repeats``, while they disagree); the median is the figure, the quartiles and the
  minimum say how noisy it was. A single-thread CPU measurement is timed by its on-CPU time,
  so that another program taking the core does not count (:mod:`trainfree.hardware.timing`);
  the wall times are kept beside it. On CUDA every run is synchronised. On the CPU the timed
  runs follow :func:`steady_allocator`: memory a run frees is kept for the next, as in a
  serving process, so the figure is the compute, not page faults.
- **memory**: the peak inference footprint in MB, ``memory_mb = weights_mb + activation_mb``:
  what a device must hold at once to run the model. ``weights_mb`` is the parameters' size;
  ``activation_mb`` is the peak memory one forward pass *adds* on top of them. On CUDA it is
  the caching allocator's peak minus what was allocated before the run. On Linux CPUs it is
  the true high-water mark of the process's resident memory during the run: the kernel's
  peak counter (``VmHWM``) is reset just before the run (``/proc/self/clear_refs``), after
  returning freed heap memory to the system (``malloc_trim``), so ``VmHWM - VmRSS(before)``
  is exactly the largest amount of memory the run held at once. LTS instead summed the
  PyTorch profiler's per-operator allocations, which counts every activation ever
  allocated, not what is alive together (see docs/search.md for the comparison).

Every measurement runs in a fresh worker process forked from a clean server (the
``forkserver`` start method), so an earlier model's allocations, caches and fragmented heap
cannot pollute the next one, and a model that runs the machine out of memory kills only its
worker: the measurement comes back as failed, with the reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainfree.errors import ConfigError
from trainfree.hardware.memory_probes import cpu_peak_probe, cuda_peak_probe, steady_allocator
from trainfree.hardware.quantize import as_measured
from trainfree.hardware.timing import clock_for, reference_ms, time_runs
from trainfree.runtime.workers import die_with_parent, main_hidden, too_big, worker_context

#: ``llamacpp``: generation in llama.cpp from a GGUF file (:mod:`trainfree.hardware.llamacpp`)
BACKENDS = ("torch", "onnx", "llamacpp")
DEVICES = ("cpu", "cuda")
#: ``forward``: one forward pass of ``seq_len`` tokens; ``generate``: prefill, decode per
#: token and memory at a context (:mod:`trainfree.hardware.generation`)
MODES = ("forward", "generate")
#: ``int8``: Linear weights quantised to int8, activations dynamically (PyTorch's dynamic
#: quantization, torch backend on the CPU; :mod:`trainfree.hardware.quantize`); ``f16``,
#: ``q8_0``, ``q4_k_m``: the GGUF weight formats of the llamacpp backend (``none``: float32)
QUANTIZE = ("none", "int8", "f16", "q8_0", "q4_k_m")
#: the quantizations of each backend
BACKEND_QUANTIZE = {
    "torch": ("none", "int8"),
    "onnx": ("none",),
    "llamacpp": ("none", "f16", "q8_0", "q4_k_m"),
}
#: the generation settings and their defaults, sized for a 2-core CPU: a 128-token prompt,
#: a 512-token context, 16 generated tokens per timed run. Left out of ``as_dict`` at their
#: defaults, so that the keys of every earlier measurement stay as they were
GENERATION_DEFAULTS = {
    "mode": "forward",
    "prompt_len": 128,
    "context": 512,
    "new_tokens": 16,
    "quantize": "none",
}
MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class HardwareSettings:
    """How to measure: backend, device and the input shape (defaults as LTS measured)."""

    backend: str = "torch"
    device: str = "cpu"
    batch_size: int = 1
    seq_len: int = 192
    threads: int = 1
    warmup: int = 2
    repeats: int = 10
    timeout_s: float = 600.0
    #: more timed runs while they disagree, up to this many in all (None: ``repeats``)
    max_repeats: int | None = None
    mode: str = "forward"
    prompt_len: int = 128  # P: the prompt of the prefill
    context: int = 512  # C: the context at which decode and memory are measured
    new_tokens: int = 16  # N: single-token steps per timed decode run
    quantize: str = "none"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError("backend", self.backend, f"one of {list(BACKENDS)}")
        if self.device not in DEVICES:
            raise ConfigError("device", self.device, f"one of {list(DEVICES)}")
        if self.backend in ("onnx", "llamacpp") and self.device != "cpu":
            raise ConfigError("device", self.device, f"cpu (the {self.backend} backend runs on the CPU)")
        for name, minimum in (
            ("batch_size", 1),
            ("seq_len", 1),
            ("threads", 1),
            ("warmup", 0),
            ("repeats", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(name, value, f"an integer >= {minimum}")
        top = self.max_repeats
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < self.repeats):
            raise ConfigError("max_repeats", top, f"an integer >= repeats ({self.repeats})")
        if not self.timeout_s > 0:
            raise ConfigError("timeout_s", self.timeout_s, "a positive number of seconds")
        self._check_generation()

    def _check_generation(self) -> None:
        for name, choices in (("mode", MODES), ("quantize", QUANTIZE)):
            if getattr(self, name) not in choices:
                raise ConfigError(name, getattr(self, name), f"one of {list(choices)}")
        for name in ("prompt_len", "context", "new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")
        if self.prompt_len + self.new_tokens > self.context:
            raise ConfigError(
                "context",
                self.context,
                f"at least prompt_len + new_tokens = {self.prompt_len + self.new_tokens} tokens",
            )
        allowed = BACKEND_QUANTIZE[self.backend] if self.device == "cpu" else ("none",)
        if self.quantize not in allowed:
            text = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
            raise ConfigError(
                "quantize",
                self.quantize,
                f"{text} with {self.name} (int8: torch on the cpu; f16, q8_0, q4_k_m: llamacpp)",
            )
        if self.backend == "llamacpp" and self.mode != "generate":
            raise ConfigError(
                "mode", self.mode, "generate with backend llamacpp (it measures pp and tg, as llama-bench)"
            )
        if self.backend == "llamacpp" and self.batch_size != 1:
            raise ConfigError("batch_size", self.batch_size, "1 with backend llamacpp (one sequence)")

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.device}"

    @property
    def workload(self) -> str:
        """What a measurement times, in words: a forward pass of ``seq_len`` tokens, or
        generation (for titles and headers, so a figure says what it covers)."""
        if self.mode != "generate":
            return f"{self.seq_len} tokens"
        weights = f", {self.quantize} weights" if self.quantize != "none" else ""
        return (
            f"generating: prompt {self.prompt_len}, context {self.context}, "
            f"{self.new_tokens} tokens per run{weights}"
        )

    @property
    def kv_bytes(self) -> int:
        """Bytes of one cached key or value: float32 in PyTorch, float16 in llama.cpp (its
        default cache type)."""
        return 2 if self.backend == "llamacpp" else 4

    @property
    def clock(self) -> str:
        """``cpu`` (on-CPU time) or ``wall``: what times the runs (``timing.clock_for``)."""
        return clock_for(self.device, self.threads)

    def as_dict(self) -> dict[str, Any]:
        """The settings; the generation settings only where they differ from their defaults
        (every earlier cache key and settings file stays valid)."""
        out = asdict(self)
        for key, default in GENERATION_DEFAULTS.items():
            if out[key] == default:
                del out[key]
        if self.mode == "forward":  # the generation shape means nothing to a forward pass
            for key in ("prompt_len", "context", "new_tokens"):
                out.pop(key, None)
        return out


@dataclass
class Measurement:
    """The outcome of one measurement. ``ok`` False means the architecture is infeasible on
    this device with these settings; ``error`` says why."""

    ok: bool
    latency_ms: float = math.nan
    latency_p25_ms: float = math.nan
    latency_p75_ms: float = math.nan
    latency_min_ms: float = math.nan
    memory_mb: float = math.nan  # weights_mb + activation_mb: the inference footprint
    weights_mb: float = math.nan
    activation_mb: float = math.nan
    memory_method: str = ""
    seconds_setup: float = 0.0
    seconds_memory: float = 0.0
    seconds_latency: float = 0.0
    error: str | None = None
    runs_ms: list[float] = field(default_factory=list)  # wall time of each timed run
    cpu_runs_ms: list[float] = field(default_factory=list)  # on-CPU time of each timed run
    #: what ``latency_ms`` is the median of: ``cpu`` (on-CPU time) or ``wall``
    latency_clock: str = "wall"
    latency_spread: float = math.nan  # the runs' IQR over their median
    repeatable: bool = True  # False: the runs still disagreed by more than 10% at max_repeats
    #: the share of runs that another program interrupted (single-thread CPU runs; else NaN)
    interrupted_share: float = math.nan
    reference_ms: float = math.nan  # on-CPU time of the reference kernel (``timing``)
    others_running: float = math.nan  # other programs running while it was timed (mean)
    #: generation (``mode="generate"``, :mod:`trainfree.hardware.generation`; else NaN): the
    #: prefill of ``prompt_len`` tokens, decode per token at ``context`` (the ``latency_*``
    #: fields then describe decode too), the KV cache at ``context`` (analytic)
    prefill_ms: float = math.nan
    prefill_spread: float = math.nan
    decode_ms_per_token: float = math.nan
    kv_cache_mb: float = math.nan
    #: the weights as measured where that is not float32 tensors (llamacpp: the GGUF file's
    #: format and tensor types)
    weights_format: str = ""
    #: when it was taken (Unix time; None: unknown, as in caches from before it was kept):
    #: the machine's speed drifts, and the cost model levels measurements by their session
    measured_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """A measurement read back (from a worker or a cache file), its fields checked: a
        successful one must carry finite, non-negative figures of the right types."""
        if not isinstance(data, dict):
            raise ValueError("not a measurement: not an object")
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - names
        if unknown or not isinstance(data.get("ok"), bool):
            raise ValueError(f"not a measurement: unknown fields {sorted(unknown)}" if unknown else "no 'ok'")
        out = cls(**data)
        if out.ok:
            for name in _FIGURES:
                value = getattr(out, name)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"measurement field {name}: {value!r} is not a number")
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"measurement field {name}: {value!r} is not a finite number >= 0")
            if not isinstance(out.runs_ms, list) or not isinstance(out.memory_method, str):
                raise ValueError("measurement fields runs_ms/memory_method have the wrong type")
            if not isinstance(out.cpu_runs_ms, list) or out.latency_clock not in ("cpu", "wall"):
                raise ValueError("measurement fields cpu_runs_ms/latency_clock have the wrong type")
            if not isinstance(out.weights_format, str):
                raise ValueError("measurement field weights_format is not a string")
            if not isinstance(out.repeatable, bool):
                raise ValueError("measurement field repeatable is not true or false")
            for name in _GENERATION_FIGURES:  # NaN: not a generation measurement
                value = getattr(out, name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"measurement field {name}: {value!r} is not a number >= 0")
        t = out.measured_at
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            raise ValueError(f"measurement field measured_at: {t!r} is not a time")
        return out


#: the figures a successful measurement must carry (finite, >= 0)
_FIGURES = (
    "latency_ms",
    "latency_p25_ms",
    "latency_p75_ms",
    "latency_min_ms",
    "memory_mb",
    "weights_mb",
    "activation_mb",
)


_GENERATION_FIGURES = ("prefill_ms", "prefill_spread", "decode_ms_per_token", "kv_cache_mb")


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """A description of this machine, stored with every cached measurement."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "torch": torch.__version__,
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    ort = _installed_version("onnxruntime", "onnxruntime-gpu")  # not imported: it writes under ~/.cache
    if ort:
        info["onnxruntime"] = ort
    return info


def _installed_version(*names: str) -> str | None:
    """The version of the first installed distribution of ``names``, read from its metadata
    without importing it (importing onnxruntime writes a device-id file in the user's home)."""
    from importlib import metadata

    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return None


# ----------------------------------------------------------------- the measurement
def _memory_then_latency(
    run: Callable[[], Any],
    sync: Callable[[], None],
    probe: tuple[str, Callable[[], None], Callable[[], float]],
    settings: HardwareSettings,
    weights_mb: float,
    seconds_setup: float,
) -> Measurement:
    """The peak memory of one cold ``run()`` under ``probe``, then the timed runs."""
    method, start, stop = probe
    t0 = time.perf_counter()
    start()
    out = run()
    activation_mb = stop()
    del out
    seconds_memory = time.perf_counter() - t0
    t0 = time.perf_counter()
    steady_allocator()
    top = settings.max_repeats or settings.repeats
    reference = reference_ms if settings.device == "cpu" else None
    timing = time_runs(run, sync, settings.warmup, settings.repeats, top, settings.clock, reference)
    return Measurement(
        ok=True,
        memory_mb=float(weights_mb + activation_mb),
        weights_mb=float(weights_mb),
        activation_mb=float(activation_mb),
        memory_method=method,
        seconds_setup=seconds_setup,
        seconds_memory=seconds_memory,
        seconds_latency=time.perf_counter() - t0,
        measured_at=time.time(),
        **timing.summary(),
    )


def profile_here(space: Any, config: Any, settings: HardwareSettings, seed: int = 0) -> Measurement:
    """Measure in *this* process (no isolation); :func:`profile` is what callers want."""
    t_setup = time.perf_counter()
    if settings.backend == "llamacpp":
        from trainfree.hardware.llamacpp import profile_llamacpp

        return profile_llamacpp(space, config, settings, seed, t_setup)
    if settings.mode == "generate":
        from trainfree.hardware.generation import profile_generation

        return profile_generation(space, config, settings, seed, t_setup)
    if settings.seq_len > space.max_seq_len(config):
        return Measurement(
            ok=False,
            error=f"seq_len {settings.seq_len} exceeds what this architecture accepts "
            f"({space.max_seq_len(config)} positions)",
        )
    torch.set_num_threads(settings.threads)
    model, weights_mb = as_measured(space.build(config, seed=seed).eval(), settings)  # int8 if asked
    ids = space.example_input(config, settings.batch_size, settings.seq_len, seed=seed)
    if settings.backend == "onnx":
        from trainfree.hardware.onnx_runtime import measure_onnx

        return measure_onnx(space, model, ids, settings, weights_mb, t_setup)
    cuda = settings.device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            return Measurement(ok=False, error="device cuda requested but torch sees no CUDA device")
        model, ids = model.to("cuda"), ids.to("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def run() -> Any:
        return space.inference(model, ids)

    with torch.inference_mode():
        space.inference(model, ids[:, :1])  # lazy kernel/library initialisation, not counted
        sync()
        probe = cuda_peak_probe() if cuda else cpu_peak_probe()
        return _memory_then_latency(run, sync, probe, settings, weights_mb, time.perf_counter() - t_setup)


# ----------------------------------------------------------------- isolation
def failed_measurement(exc: Exception) -> Measurement:
    """A measurement that raised, as an infeasible architecture with the reason."""
    msg = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        msg = f"out of memory: {msg}"
    return Measurement(ok=False, error=msg[:500])


def _child(conn: Any, space: Any, config: Any, settings: HardwareSettings, seed: int, owner: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills this child
    die_with_parent(owner)
    try:
        result = profile_here(space, config, settings, seed).as_dict()
    except Exception as exc:  # reported to the parent as an infeasible architecture
        result = failed_measurement(exc).as_dict()
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send(result)
        conn.close()


def profile(
    space: Any, config: Any, settings: HardwareSettings | None = None, seed: int = 0, isolate: bool = True
) -> Measurement:
    """Latency and peak memory of ``config``, each in a fresh worker process by default.

    Never raises for a model that cannot run: an exception, a crash (e.g. the kernel killing
    the worker for memory) or a timeout all return ``Measurement(ok=False, error=...)``.
    ``isolate=False`` measures in this process (a Ray task's fresh worker), and leaves its
    allocator as :func:`steady_allocator` set it.
    """
    settings = settings or HardwareSettings()
    reason = too_big(space, config, settings)
    if reason:
        return Measurement(ok=False, error=reason)
    if not isolate:
        try:
            return profile_here(space, config, settings, seed)
        except Exception as exc:
            return failed_measurement(exc)
    ctx = worker_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, space, config, settings, seed, os.getpid()), daemon=True)
    try:
        with main_hidden():
            proc.start()
    except OSError as exc:  # killed as it started (the parent's write to it broke): transient
        child.close()
        parent.close()
        return Measurement(ok=False, error=f"measurement worker died as it started ({exc})"[:500])
    child.close()
    try:
        if parent.poll(settings.timeout_s):
            try:
                data = parent.recv()
            except EOFError:
                data = None
        else:
            proc.kill()
            proc.join()
            return Measurement(ok=False, error=f"timed out after {settings.timeout_s:.0f} s")
    finally:
        parent.close()
    proc.join()
    if data is None:
        code = proc.exitcode
        hint = " (killed: out of memory?)" if code in (-9, 137) else ""
        return Measurement(ok=False, error=f"measurement worker died with exit code {code}{hint}")
    return Measurement.from_dict(data)
