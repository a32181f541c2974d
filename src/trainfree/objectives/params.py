"""Parameters: the space's count of the config's weights (the decoder's share shown with it)."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import COUNT_UNITS, Objective

register_objective(
    Objective(
        "params",
        "params",
        "parameters",
        "",
        COUNT_UNITS,
        rank=30,
        compute=lambda space, config, workload: space.param_counts(config).total,
        columns=("decoder_params",),
        bench_help="total parameter count",
        bench_rank=20,
    )
)
