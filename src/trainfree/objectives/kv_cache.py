"""The KV cache at the run's context: keys and values of every layer (analytic; runs that
measure generation only, on spaces whose models have one)."""

from typing import Any

from trainfree.objectives import register_objective
from trainfree.objectives.base import MB_UNITS, Objective, Workload


def kv_cache_mb(space: Any, config: Any, workload: Workload) -> float | None:
    if workload.mode != "generate" or not hasattr(space, "kv_cache_mb"):
        return None
    return float(space.kv_cache_mb(config, workload.context, workload.batch_size, workload.kv_bytes))


register_objective(
    Objective(
        "kv_cache",
        "kv_cache_mb",
        "KV cache at the context",
        "MB",
        MB_UNITS,
        rank=70,
        compute=kv_cache_mb,
        mode="generate",
    )
)
