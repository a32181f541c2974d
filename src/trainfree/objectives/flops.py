"""FLOPs: the forward pass of one sequence of the workload's length (``bench``: the longest)."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import COUNT_UNITS, Objective

register_objective(
    Objective(
        "flops",
        "flops",
        "FLOPs",
        "",
        COUNT_UNITS,
        rank=40,
        compute=lambda space, config, workload: space.flops(config, workload.seq_len),
        bench_help="forward FLOPs of one sequence of the space's maximum length",
        bench_rank=10,
    )
)
