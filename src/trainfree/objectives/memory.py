"""Peak inference memory: the weights plus the activations' peak, measured on the device.

The cost model predicts the activations (``activation_mb``); the weights are exact."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import MB_UNITS, Objective

register_objective(
    Objective(
        "memory",
        "memory_mb",
        "peak memory (weights + activations)",
        "MB",
        MB_UNITS,
        rank=20,
        measurement="memory_mb",
        target="activation_mb",
        columns=("weights_mb", "activation_mb"),
        bench_help="measured peak inference memory in MB (hardware cache)",
        bench_rank=40,
    )
)
