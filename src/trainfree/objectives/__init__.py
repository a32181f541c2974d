"""The cost objectives: one module per objective, each one ``register_objective`` call.

``all_objectives()`` is every registered objective in column order (``Objective.rank``);
:data:`OBJECTIVES` is the same as a live mapping (an objective registered later, by a plugin
or a test, is seen by everything that reads it). The search (objective matrix, limits,
which architectures need the device), ``bench --frontier``, the cost model's targets, the
frontier files' columns and the CLI help all read this registry, so a new cost is one new
file here (see :mod:`trainfree.objectives.base` for what an objective declares)::

    # src/trainfree/objectives/depth.py
    from trainfree.objectives import register_objective
    from trainfree.objectives.base import COUNT_UNITS, Objective

    register_objective(Objective("depth", "depth", "layers", "", COUNT_UNITS, rank=45,
                                 compute=lambda space, config, workload: config.n_layer))
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainfree.errors import ConfigError
from trainfree.objectives.base import Objective, Shape, Workload
from trainfree.registry import Registry

REGISTRY: Registry[Objective] = Registry("objective", "trainfree.objectives")


@dataclass
class _Order:
    """``all_objectives()``'s last answer and the registrations it was made after: the
    search reads objectives per record, so the order is not worked out again each time."""

    registrations: int = 0
    made_after: int = -1
    objectives: dict[str, Objective] = field(default_factory=dict)

    def current(self) -> dict[str, Objective]:
        REGISTRY.discover()
        if self.made_after != self.registrations:
            found = sorted((REGISTRY.get(n) for n in REGISTRY.names()), key=lambda o: (o.rank, o.name))
            self.objectives, self.made_after = {o.name: o for o in found}, self.registrations
        return self.objectives


_ORDER = _Order()


def register_objective(objective: Objective) -> Objective:
    """Make ``objective`` available to the search, ``bench`` and the cost model."""
    REGISTRY.register(objective.name, objective)
    _ORDER.registrations += 1
    return objective


def unregister_objective(name: str) -> None:
    """Undo :func:`register_objective` (a test's or a plugin's own objective)."""
    REGISTRY.unregister(name)
    _ORDER.registrations += 1


def all_objectives() -> dict[str, Objective]:
    """name -> objective, in column order (a fresh dict: the caller may change it)."""
    return dict(_ORDER.current())


class _Live(Mapping[str, Objective]):
    """:func:`all_objectives` as a mapping read afresh on each use."""

    def __getitem__(self, name: str) -> Objective:
        return _ORDER.current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(all_objectives())

    def __len__(self) -> int:
        return len(all_objectives())

    def __repr__(self) -> str:
        return f"OBJECTIVES({list(self)})"


#: every registered objective by name, in column order (live)
OBJECTIVES: Mapping[str, Objective] = _Live()


def get_objective(name: str) -> Objective:
    known = all_objectives()
    if name not in known:
        raise ConfigError("objectives", name, f"one of {list(known)}")
    return known[name]


def check_objectives(names: Sequence[str]) -> list[Objective]:
    if not names:
        raise ConfigError("objectives", list(names), f"at least one of {list(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ConfigError("objectives", list(names), "each objective once")
    return [get_objective(n) for n in names]


def parse_limits(items: Sequence[str]) -> dict[str, float]:
    """``["latency=50ms", "memory=300MB"]`` -> ``{"latency": 50.0, "memory": 300.0}``."""
    known = all_objectives()
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not value.strip():
            raise ConfigError("max", item, f"NAME=VALUE with NAME one of {list(known)} (e.g. latency=50ms)")
        if name not in known:
            raise ConfigError("max", item, f"a limit on one of {list(known)}")
        if name in out:
            raise ConfigError("max", item, f"one limit per objective ({name} is given twice)")
        out[name] = known[name].parse(value)
    return out


def limit_text(name: str, value: float) -> str:
    """``latency <= 50 ms``, ``params <= 20M``: a limit with its unit."""
    o = OBJECTIVES[name]
    return f"{name} <= {value:g} {o.unit}" if o.unit else f"{name} <= {value / 1e6:g}M"


def unitless_limits(items: Sequence[str]) -> list[str]:
    """A note per ``--max NAME=VALUE`` given without a unit, naming the unit it was taken in
    (``--max latency=50: no unit, taken as 50 ms``); none for counts (params, flops)."""
    known = all_objectives()
    notes = []
    for item in items:
        name, _, value = str(item).partition("=")
        name, value = name.strip(), value.strip()
        o = known.get(name)
        if o is not None and o.unit and re.fullmatch(r"[0-9.eE+-]+", value):
            notes.append(f"--max {item}: no unit given, taken as {float(value):g} {o.unit}")
    return notes


def check_limits(limits: Mapping[str, Any]) -> dict[str, float]:
    """Validated ``{objective: maximum}`` (as stored in settings.json)."""
    if not isinstance(limits, Mapping):
        raise ConfigError("limits", limits, "an object {objective: maximum}")
    known = all_objectives()
    out = {}
    for name, value in limits.items():
        if name not in known:
            raise ConfigError("limits", name, f"a limit on one of {list(known)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
            raise ConfigError(f"max {name}", value, "a finite positive number")
        out[name] = float(value)
    return out


def needs_device(objectives: Sequence[str], limits: Mapping[str, float]) -> bool:
    """Whether any objective or limit is a measured cost."""
    return any(OBJECTIVES[n].measured for n in (*objectives, *limits))


def generation_names() -> tuple[str, ...]:
    """The objectives that make a run measure generation (``HardwareSettings.mode="generate"``)."""
    return tuple(n for n, o in all_objectives().items() if o.mode == "generate")


def needs_generation(objectives: Sequence[str], limits: Mapping[str, float]) -> bool:
    """Whether a run's costs are generation costs (any objective of mode ``generate`` used)."""
    generate = generation_names()
    return any(n in generate for n in (*objectives, *limits))


def measured_names(objectives: Sequence[str], limits: Mapping[str, float]) -> list[str]:
    """The measured costs a run uses (objectives and limits), in column order."""
    used = set(objectives) | set(limits)
    return [n for n, o in all_objectives().items() if o.measured and n in used]


def measured_fields() -> list[str]:
    """The record fields of every measured objective, in column order."""
    return [o.field for o in all_objectives().values() if o.measured]


def model_targets() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The cost model's targets: those of forward objectives (always fitted), and those of
    generation objectives besides them (fitted where every calibration row has them)."""
    required: list[str] = []
    optional: list[str] = []
    for o in all_objectives().values():
        if o.target is None:
            continue
        if o.mode == "forward" and o.target not in required:
            required.append(o.target)
    for o in all_objectives().values():
        if o.target is not None and o.mode != "forward" and o.target not in (*required, *optional):
            optional.append(o.target)
    return tuple(required), tuple(optional)


def bench_costs() -> dict[str, str]:
    """The costs ``bench --frontier`` offers, and what each one is."""
    offered = [o for o in all_objectives().values() if o.bench_help]
    return {o.name: o.bench_help for o in sorted(offered, key=lambda o: (o.bench_rank, o.rank))}


__all__ = [
    "OBJECTIVES",
    "REGISTRY",
    "Objective",
    "Shape",
    "Workload",
    "all_objectives",
    "bench_costs",
    "check_limits",
    "check_objectives",
    "generation_names",
    "get_objective",
    "limit_text",
    "measured_fields",
    "measured_names",
    "model_targets",
    "needs_device",
    "needs_generation",
    "parse_limits",
    "register_objective",
    "unitless_limits",
    "unregister_objective",
]
