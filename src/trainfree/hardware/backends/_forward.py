"""What the forward-pass backends (torch, onnx) share: the model and input of one measurement,
and the measurement itself (the peak memory of one cold run, then the timed runs)."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from trainfree.hardware.measurement import Measurement
from trainfree.hardware.settings import Backend, HardwareSettings


class ForwardBackend(Backend):
    """A backend that times ``space.inference`` (torch, onnx): the model and input built here,
    generation measured in PyTorch from the space's KV cache (:mod:`trainfree.hardware.generation`);
    a subclass says how one forward pass is measured. Not registered: it is no backend."""

    def config_error(self, space: Any, config: Any, settings: HardwareSettings) -> str | None:
        return generation_error_if_generating(space, config, settings)

    def measure(
        self, space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
    ) -> Measurement:
        if settings.mode == "generate":
            from trainfree.hardware.generation import profile_generation

            return profile_generation(space, config, settings, seed, t_setup)
        inputs = forward_inputs(space, config, settings, seed)
        if isinstance(inputs, Measurement):
            return inputs
        model, weights_mb, ids = inputs
        return self.measure_forward(space, model, weights_mb, ids, settings, t_setup)

    @abstractmethod
    def measure_forward(
        self, space: Any, model: Any, weights_mb: float, ids: Any, settings: HardwareSettings, t_setup: float
    ) -> Measurement:
        """One forward pass of the built ``model`` on ``ids`` (``weights_mb``: as measured)."""


def forward_inputs(
    space: Any, config: Any, settings: HardwareSettings, seed: int
) -> tuple[Any, float, Any] | Measurement:
    """``(model, weights_mb, ids)`` of a forward-pass measurement, the model as measured
    (int8 if asked); a failed :class:`Measurement` when ``seq_len`` exceeds the model's
    positions."""
    import torch

    from trainfree.hardware.quantize import as_measured

    if settings.seq_len > space.max_seq_len(config):
        return Measurement(
            ok=False,
            error=f"seq_len {settings.seq_len} exceeds what this architecture accepts "
            f"({space.max_seq_len(config)} positions)",
        )
    torch.set_num_threads(settings.threads)
    model, weights_mb = as_measured(space.build(config, seed=seed).eval(), settings)  # int8 if asked
    ids = space.example_input(config, settings.batch_size, settings.seq_len, seed=seed)
    return model, weights_mb, ids


def memory_then_latency(
    run: Callable[[], Any],
    sync: Callable[[], None],
    probe: tuple[str, Callable[[], None], Callable[[], float]],
    settings: HardwareSettings,
    weights_mb: float,
    seconds_setup: float,
) -> Measurement:
    """The peak memory of one cold ``run()`` under ``probe``, then the timed runs."""
    from trainfree.hardware.memory_probes import steady_allocator
    from trainfree.hardware.timing import reference_ms, time_runs

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


def generation_error_if_generating(space: Any, config: Any, settings: HardwareSettings) -> str | None:
    """The forward backends measure generation in PyTorch (:mod:`trainfree.hardware.generation`):
    why ``config`` cannot be, when generation is asked (None otherwise)."""
    if settings.mode != "generate":
        return None
    from trainfree.hardware.generation import generation_error

    return generation_error(space, config, settings)
