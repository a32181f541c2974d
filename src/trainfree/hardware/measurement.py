"""What one measurement found (:class:`Measurement`), and the machine it was taken on.

Torch-free at import: the settings, the caches and the command line read measurements without
loading PyTorch (:func:`machine_info` imports it when called).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1024.0 * 1024.0


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
    import torch

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
    ort = installed_version("onnxruntime", "onnxruntime-gpu")  # not imported: it writes under ~/.cache
    if ort:
        info["onnxruntime"] = ort
    return info


def installed_version(*names: str) -> str | None:
    """The version of the first installed distribution of ``names``, read from its metadata
    without importing it (importing onnxruntime writes a device-id file in the user's home)."""
    from importlib import metadata

    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return None
