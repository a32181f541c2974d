"""The PyTorch backend (``--backend torch``, the default): ``space.inference`` in eager
PyTorch on the CPU or a CUDA GPU, in float32 or (CPU) with int8 dynamic quantization; with
``mode="generate"``, generation from its KV cache (:mod:`trainfree.hardware.generation`).
What is measured and how is in :mod:`trainfree.hardware.profiler`'s docstring."""

from __future__ import annotations

import time
from typing import Any

from trainfree.hardware.backends._forward import ForwardBackend, memory_then_latency
from trainfree.hardware.measurement import Measurement
from trainfree.hardware.settings import HardwareSettings, register_backend


@register_backend("torch")
class TorchBackend(ForwardBackend):
    """Eager PyTorch."""

    title = "PyTorch"
    order = 0
    devices = ("cpu", "cuda")
    #: ``int8``: Linear weights quantised to int8, activations dynamically (PyTorch's dynamic
    #: quantization, on the CPU; :mod:`trainfree.hardware.quantize`)
    quantize = ("none", "int8")
    quantize_note = "int8: torch on the cpu"

    def measure_forward(
        self, space: Any, model: Any, weights_mb: float, ids: Any, settings: HardwareSettings, t_setup: float
    ) -> Measurement:
        return measure_torch(space, model, weights_mb, ids, settings, t_setup)


def measure_torch(
    space: Any, model: Any, weights_mb: float, ids: Any, settings: HardwareSettings, t_setup: float
) -> Measurement:
    """One forward pass of ``model`` on ``ids``, on the settings' device."""
    import torch

    from trainfree.hardware.memory_probes import cpu_peak_probe, cuda_peak_probe

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
        return memory_then_latency(run, sync, probe, settings, weights_mb, time.perf_counter() - t_setup)
