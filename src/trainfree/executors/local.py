"""The local executor (the default): proxies in a persistent pool of worker processes on this
machine, measurements one at a time on this machine, each in a fresh forkserver child.

This is exactly what trainfree did before the executor seam existed; it imports nothing of Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trainfree.executors.base import LOCAL_NODE, Executor, MeasureResult, Scorer, register_executor
from trainfree.hardware.measurement import machine_info
from trainfree.hardware.measurement_cache import profile_cached
from trainfree.hardware.settings import HardwareSettings


@register_executor("local")
class LocalExecutor(Executor):
    """Worker processes and measurements on this machine."""

    runs_here = True

    def scorer(self, space: Any, settings: dict[str, Any], workers: int) -> Scorer:
        from trainfree.proxies.runner import ProxyPool

        return ProxyPool(space, settings, workers)

    def machine(self, device: str) -> dict[str, Any]:
        return machine_info(device)

    def measure(
        self,
        space: Any,
        configs: Sequence[Any],
        settings: HardwareSettings,
        cache: Any,
        seed: int,
        on_result: Callable[[int, MeasureResult], None],
    ) -> None:
        measure_locally(space, configs, settings, cache, seed, on_result)

    def parallelism(self) -> int:
        from trainfree.runtime.workers import cpu_workers

        return cpu_workers()


def measure_locally(
    space: Any,
    configs: Sequence[Any],
    settings: HardwareSettings,
    cache: Any,
    seed: int,
    on_result: Callable[[int, MeasureResult], None],
) -> None:
    """One at a time on this machine, each in a fresh process, through the cache."""
    for i, config in enumerate(configs):
        m, cached = profile_cached(space, config, settings, cache, seed=seed)
        on_result(i, MeasureResult(m, cached, None if cached else LOCAL_NODE))
