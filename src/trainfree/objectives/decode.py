"""Decode: one generated token at the context (llama.cpp's tg), timed in a generation
measurement; the cost model predicts it as a generation model's latency."""

from trainfree.objectives import register_objective
from trainfree.objectives.base import MS_UNITS, Objective

register_objective(
    Objective(
        "decode",
        "decode_ms_per_token",
        "decode per token",
        "ms",
        MS_UNITS,
        rank=60,
        measurement="decode_ms_per_token",
        target="latency_ms",
        mode="generate",
    )
)
