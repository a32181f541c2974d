"""Latency: one forward pass, timed on the device (the median of the timed runs)."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import MS_UNITS, Objective

register_objective(
    Objective(
        "latency",
        "latency_ms",
        "latency",
        "ms",
        MS_UNITS,
        rank=10,
        measurement="latency_ms",
        target="latency_ms",
        details=("latency_p25_ms", "latency_p75_ms"),
        bench_help="measured forward latency in ms (hardware cache)",
        bench_rank=30,
    )
)
