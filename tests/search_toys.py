"""The toy GPT-2 value sets and search settings shared by the search test files: models that
build in milliseconds, analytic objectives (nothing timed), no cache."""

from __future__ import annotations

from typing import Any

from trainfree.hardware import HardwareSettings
from trainfree.search import SearchSettings

#: a few hundred architectures of one- to three-layer models
TINY = {
    "n_layer": [1, 2, 3],
    "d_model": [64, 128],
    "d_inner": [128, 256, 512],
    "d_embed": [-1],
    "div_val": [1],
}


def search_settings(values: dict[str, Any] = TINY, **kw: Any) -> SearchSettings:
    """Settings of a toy search; ``kw`` overrides any field (budget, pop_size, seed...)."""
    base: dict[str, Any] = dict(
        space="gpt2",
        space_values=values,
        objectives=["params", "flops"],
        budget="24",
        pop_size=8,
        hardware=HardwareSettings(seq_len=32, warmup=0, repeats=1),
        use_cache=False,
    )
    base.update(kw)
    return SearchSettings(**base)
