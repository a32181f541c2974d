"""Prefill: processing the prompt (llama.cpp's pp), timed in a generation measurement."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import MS_UNITS, Objective

register_objective(
    Objective(
        "prefill",
        "prefill_ms",
        "prefill (prompt processing)",
        "ms",
        MS_UNITS,
        rank=50,
        measurement="prefill_ms",
        target="prefill_ms",
        mode="generate",
    )
)
