"""What a cost objective is: one :class:`Objective`, declared once in its own module.

An objective says how its value is produced, which is what the search, ``bench --frontier``,
the cost model, the frontier files and the CLI help need to know of it:

- **analytic** (``compute``): a function of the space, the config and the workload (sequence
  length, context), computed when an architecture is evaluated (params, flops, KV cache);
- **measured** (``measurement``): a field of the hardware profiler's ``Measurement``, timed on
  the device (latency, memory, prefill, decode);
- **predicted** (``target``): the cost-model target that predicts a measured objective when a
  run searches on ``--costs predicted``.

This module imports nothing heavy (no torch, no numpy): the CLI help reads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trainfree.errors import ConfigError

#: suffix -> factor to the objective's unit, for limits written on the command line
COUNT_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}
MS_UNITS = {"ms": 1.0, "": 1.0, "s": 1e3, "us": 1e-3}
MB_UNITS = {"mb": 1.0, "": 1.0, "gb": 1024.0, "kb": 1 / 1024}

Mode = Literal["forward", "generate"]


class Workload(Protocol):
    """What an analytic objective may depend on besides the config (``HardwareSettings``
    fulfils it; ``bench`` passes a :class:`Shape`)."""

    seq_len: int
    mode: str
    context: int
    batch_size: int

    @property
    def kv_bytes(self) -> int: ...


@dataclass(frozen=True)
class Shape:
    """A workload without a device: ``bench --frontier``'s FLOPs at the space's longest input."""

    seq_len: int
    mode: str = "forward"
    context: int = 512
    batch_size: int = 1
    kv_bytes: int = 4


#: ``(space, config, workload) -> value``; None where the objective does not apply (the KV
#: cache of a forward-pass run, a space without one)
Compute = Callable[[Any, Any, Workload], float | None]


@dataclass(frozen=True)
class Objective:
    """One cost to minimise (the proxy score, maximised, is not one)."""

    name: str  # as written on the command line: --objectives latency,memory
    field: str  # the evaluation record's field (evaluations.jsonl, evaluated.csv)
    label: str  # for tables and plots
    unit: str  # "" for counts
    units: Mapping[str, float]  # the suffixes a limit may be written with
    rank: int = 100  # the default column order (lowest first)
    compute: Compute | None = None  # analytic: computed from the config
    measurement: str | None = None  # measured: the ``Measurement`` attribute that holds it
    #: predicted: the cost-model target it is predicted from (``hardware.costmodel``)
    target: str | None = None
    mode: Mode = "forward"  # "generate": needs a generation measurement (llama.cpp's pp/tg)
    #: further record fields shown with it (evaluated.csv and frontier files; ``details``:
    #: evaluated.csv only)
    columns: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    bench_help: str = ""  # offered by ``bench --frontier`` with this help ("": not offered)
    bench_rank: int = 100  # its place in ``bench --frontier``'s list
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if (self.compute is None) == (self.measurement is None):
            raise ValueError(f"objective {self.name}: give exactly one of compute and measurement")

    @property
    def source(self) -> str:
        """``analytic`` or ``measured``."""
        return "analytic" if self.compute is not None else "measured"

    @property
    def measured(self) -> bool:
        return self.measurement is not None

    @property
    def is_count(self) -> bool:
        """A count (parameters, FLOPs): shown on a log scale, and before the measured costs."""
        return not self.unit

    @property
    def title(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def parse(self, text: str) -> float:
        """``"50ms"`` -> 50.0, ``"1.5s"`` -> 1500.0, ``"300MB"`` -> 300.0, ``"20M"`` -> 2e7."""
        t = str(text).strip().lower().replace(" ", "")
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)([a-z]*)", t)
        if m and m.group(2) in self.units:
            value = float(m.group(1)) * self.units[m.group(2)]
            if math.isfinite(value) and value > 0:
                return value
        suffixes = ", ".join(s or "no suffix" for s in self.units)
        raise ConfigError(f"max {self.name}", text, f"a positive number with a unit ({suffixes})")

    def analytic_value(self, space: Any, config: Any, workload: Workload) -> float | None:
        """The value computed from the config (None: not analytic, or not defined here)."""
        if self.compute is None:
            return None
        return self.compute(space, config, workload)
