"""What a latency covers, in words: the line printed wherever a latency is shown.

Three figures for one model can differ by half and all be right: the search's latency is the
median *on-CPU* time of a single-thread forward pass with memory kept between runs, ``profile``
may time another batch, sequence or thread count, and a forward pass of an exported model
through ``transformers`` (wall clock, the process's default threads, fresh allocations,
a Python wrapper) is slower again. The sentence names the clock, the work and the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainfree.hardware.settings import BACKENDS, GENERATION_DEFAULTS


def _clock(hw: Mapping[str, Any]) -> str:
    device, threads = hw.get("device", "cpu"), int(hw.get("threads", 1) or 1)
    if device == "cpu" and threads == 1:
        return "on-CPU time (time another program takes from the core is not counted)"
    return "wall time" + (", each run synchronised" if device == "cuda" else "")


def what_is_timed(hw: Mapping[str, Any]) -> str:
    """One sentence: what a latency of these hardware settings (``HardwareSettings.as_dict()``
    or a run's ``settings.json`` ``hardware``) is the time of."""
    device, backend = hw.get("device", "cpu"), hw.get("backend", "torch")
    threads = int(hw.get("threads", 1) or 1)
    title = BACKENDS.get(backend).title if backend in BACKENDS else backend
    where = f"{title} on the {device.upper()}"
    if device == "cpu":
        where += f", {threads} thread{'s' if threads != 1 else ''}"
    if hw.get("quantize") == "int8":
        where += ", int8 weights"
    hw = {**GENERATION_DEFAULTS, **hw}  # as_dict() leaves out the defaults
    batch = hw.get("batch_size", 1)
    if hw.get("mode") == "generate":
        work = (
            f"prefill: the {hw.get('prompt_len')}-token prompt; decode: one new token per step at a "
            f"{hw.get('context')}-token context (batch {batch})"
        )
    else:
        work = (
            f"one forward pass of batch {batch} x {hw.get('seq_len')} tokens, to the log-probabilities "
            "of every next token for language models (embedding, blocks and output layer)"
        )
    return (
        f"latency: the median {_clock(hw)} of {work}, {where}, the model built and warmed up, "
        "memory kept between runs as in a serving process; memory: weights + the peak a pass adds"
    )
