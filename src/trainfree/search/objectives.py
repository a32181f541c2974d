"""The search's cost objectives, declared as data.

Every cost the search can minimise is one :class:`Objective` in :data:`OBJECTIVES`: its
name on the command line, the record field that holds its value, its label and unit for
tables and plots, how it is obtained (``analytic``: computed from the config;
``measured``: timed on the device, and predicted by a cost model calibrated there when the
run uses ``--costs predicted``) and the units a constraint may be written in. Everything
else (the optimiser's objective matrix, constraints, tables, plots, which architectures need
the device) derives from this table, so a new cost (energy, a remote device's latency) is one
entry here plus the code that produces its field.

The quality objective (the proxy score, maximised) is not a cost and is not listed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainfree.errors import ConfigError


@dataclass(frozen=True)
class Objective:
    """One cost to minimise."""

    name: str  # as written on the command line: --objectives latency,memory
    field: str  # the evaluation record's key
    label: str  # for tables and plots
    unit: str  # "" for counts
    source: str  # "analytic" or "measured"
    units: Mapping[str, float] = field(default_factory=dict)  # suffix -> factor to `unit`

    @property
    def measured(self) -> bool:
        return self.source == "measured"

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


_COUNT = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}
_MS = {"ms": 1.0, "": 1.0, "s": 1e3, "us": 1e-3}
_MB = {"mb": 1.0, "": 1.0, "gb": 1024.0, "kb": 1 / 1024}

#: name -> objective; the order is the default column order
OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("latency", "latency_ms", "latency", "ms", "measured", _MS),
        Objective("memory", "memory_mb", "peak memory (weights + activations)", "MB", "measured", _MB),
        Objective("params", "params", "parameters", "", "analytic", _COUNT),
        Objective("flops", "flops", "FLOPs", "", "analytic", _COUNT),
        # generation (hardware mode "generate"; llama.cpp's pp and tg): memory then means the
        # peak at the context, weights + KV cache + activations (hardware.generation)
        Objective("prefill", "prefill_ms", "prefill (prompt processing)", "ms", "measured", _MS),
        Objective("decode", "decode_ms_per_token", "decode per token", "ms", "measured", _MS),
        Objective("kv_cache", "kv_cache_mb", "KV cache at the context", "MB", "analytic", _MB),
    )
}
#: the objectives that make a run measure generation (``HardwareSettings.mode="generate"``)
GENERATION = ("prefill", "decode", "kv_cache")

#: the record fields a device measurement fills in, besides the measured objectives'
MEASUREMENT_FIELDS = (
    "latency_p25_ms",
    "latency_p75_ms",
    "weights_mb",
    "activation_mb",
    "measured_at",
    "latency_clock",
    "latency_spread",
    "repeatable",
    "interrupted_share",
    "reference_ms",
    "others_running",
)


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ConfigError("objectives", name, f"one of {list(OBJECTIVES)}")
    return OBJECTIVES[name]


def check_objectives(names: Sequence[str]) -> list[Objective]:
    if not names:
        raise ConfigError("objectives", list(names), f"at least one of {list(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ConfigError("objectives", list(names), "each objective once")
    return [get_objective(n) for n in names]


def parse_limits(items: Sequence[str]) -> dict[str, float]:
    """``["latency=50ms", "memory=300MB"]`` -> ``{"latency": 50.0, "memory": 300.0}``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not value.strip():
            raise ConfigError(
                "max", item, f"NAME=VALUE with NAME one of {list(OBJECTIVES)} (e.g. latency=50ms)"
            )
        if name not in OBJECTIVES:
            raise ConfigError("max", item, f"a limit on one of {list(OBJECTIVES)}")
        if name in out:
            raise ConfigError("max", item, f"one limit per objective ({name} is given twice)")
        out[name] = OBJECTIVES[name].parse(value)
    return out


def limit_text(name: str, value: float) -> str:
    """``latency <= 50 ms``, ``params <= 20M``: a limit with its unit."""
    o = OBJECTIVES[name]
    return f"{name} <= {value:g} {o.unit}" if o.unit else f"{name} <= {value / 1e6:g}M"


def unitless_limits(items: Sequence[str]) -> list[str]:
    """A note per ``--max NAME=VALUE`` given without a unit, naming the unit it was taken in
    (``--max latency=50: no unit, taken as 50 ms``); none for counts (params, flops)."""
    notes = []
    for item in items:
        name, _, value = str(item).partition("=")
        name, value = name.strip(), value.strip()
        o = OBJECTIVES.get(name)
        if o is not None and o.unit and re.fullmatch(r"[0-9.eE+-]+", value):
            notes.append(f"--max {item}: no unit given, taken as {float(value):g} {o.unit}")
    return notes


def check_limits(limits: Mapping[str, Any]) -> dict[str, float]:
    """Validated ``{objective: maximum}`` (as stored in settings.json)."""
    if not isinstance(limits, Mapping):
        raise ConfigError("limits", limits, "an object {objective: maximum}")
    out = {}
    for name, value in limits.items():
        if name not in OBJECTIVES:
            raise ConfigError("limits", name, f"a limit on one of {list(OBJECTIVES)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
            raise ConfigError(f"max {name}", value, "a finite positive number")
        out[name] = float(value)
    return out


def needs_device(objectives: Sequence[str], limits: Mapping[str, float]) -> bool:
    """Whether any objective or limit is a measured cost."""
    return any(OBJECTIVES[n].measured for n in (*objectives, *limits))


def needs_generation(objectives: Sequence[str], limits: Mapping[str, float]) -> bool:
    """Whether a run's costs are generation costs (any of :data:`GENERATION` used)."""
    return any(n in GENERATION for n in (*objectives, *limits))


def measured_names(objectives: Sequence[str], limits: Mapping[str, float]) -> list[str]:
    """The measured costs a run uses (objectives and limits), in :data:`OBJECTIVES` order."""
    used = set(objectives) | set(limits)
    return [n for n, o in OBJECTIVES.items() if o.measured and n in used]
