"""One architecture's evaluation: the :class:`Evaluation` record and its one serialisation.

An evaluation is written as one line of a run's ``evaluations.jsonl`` (:meth:`Evaluation.flat`
gives the line's object) and read back through :meth:`Evaluation.from_flat`, which checks
every field (a run directory is plain data that people copy and edit by hand: a record of the
wrong shape is one ``ValueError`` naming the field, never a traceback deep in the search).

The line is flat, as it always was: the search's own fields (key, index, feasibility, the
proxy's score, the device features) beside the costs, each under its objective's record field
(``latency_ms``, ``params``; :mod:`trainfree.objectives`), and the measurement's details
(``latency_p25_ms``, ``measured_at``, ...). Costs and details are kept in :attr:`values` as
read (a field present with null stays present, so the output tables keep their columns);
fields this version does not know are kept in :attr:`extra` and written back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from trainfree.objectives import OBJECTIVES

#: the fields a device measurement writes besides the measured objectives' (``values``)
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
#: a measurement's fields that are not numbers (ccf6e0d checked them as numbers, so a run
#: resumed skipped its measured records as unreadable)
_MEASUREMENT_TEXTS, _MEASUREMENT_FLAGS = ("latency_clock",), ("repeatable",)
#: non-objective record fields that hold a number or null (NaN is written as null)
_NUMBERS = (
    "decoder_params",
    "seconds_proxy",
    "seconds_measure",
    "weights_mb",
    *(f for f in MEASUREMENT_FIELDS if f not in (*_MEASUREMENT_TEXTS, *_MEASUREMENT_FLAGS)),
)
_FLAGS = ("measured", "hardware_cached", "under_load", *_MEASUREMENT_FLAGS)
_TEXTS = ("fp", "reason", "measure_error", "costs", "measured_on", *_MEASUREMENT_TEXTS)
#: the typed fields, in the order a line holds them (``values`` go after ``config``)
_CORE = (
    "key", "fp", "index", "generation", "config", "feasible", "reason", "seconds_proxy", "measured",
    "score", "components", "features", "weights_mb", "genes", "hardware_cached", "seconds_measure",
    "measured_on", "measure_error", "costs",
)  # fmt: skip


@dataclass
class Evaluation:
    """An evaluated architecture. ``values``: record field -> value of its costs and their
    details (the objectives' fields, ``decoder_params``, a measurement's fields, ``under_load``);
    ``cost_source``: in a run's view only, ``measured`` or ``predicted`` (the tables' ``costs``
    column); None where a field is absent."""

    key: str
    config: dict[str, Any]
    index: int = -1
    generation: int = 0
    feasible: bool = True
    fp: str | None = None
    reason: str | None = None
    seconds_proxy: float | None = None
    score: float | None = None
    components: dict[str, float] | None = None
    values: dict[str, Any] = field(default_factory=dict)
    measured: bool = False
    features: dict[str, float] | None = None
    weights_mb: float | None = None
    genes: list[float] | None = None
    hardware_cached: bool | None = None
    seconds_measure: float | None = None
    measured_on: str | None = None
    measure_error: str | None = None
    cost_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.components is not None:  # one column order, fresh or read back (evaluated.csv)
            self.components = dict(sorted(self.components.items()))

    # ------------------------------------------------------------------ reading values
    def value(self, name: str) -> float:
        """A record field's number (``latency_ms``, ``flops``), NaN where absent or null."""
        if name == "weights_mb":
            return _num(self.weights_mb)
        if name == "seconds_measure":
            return _num(self.seconds_measure)
        return _num(self.values.get(name))

    def cost(self, objective: str) -> float:
        """The value of an objective by its name (``latency``), NaN where not known."""
        return self.value(OBJECTIVES[objective].field)

    @property
    def predicted(self) -> bool:
        """In a run's view: its device costs are the cost model's, not measured."""
        return self.cost_source == "predicted"

    def with_measurement(self, fields: dict[str, Any]) -> Evaluation:
        """This evaluation updated with a device measurement's flat fields; a failed
        measurement makes a feasible architecture infeasible (its error the reason)."""
        new = Evaluation.from_flat({**self.flat(), **fields})
        if new.measure_error and new.feasible:
            new.feasible, new.reason = False, new.measure_error
        return new

    def viewed(self, costs: dict[str, float | None], source: str) -> Evaluation:
        """A copy with these costs filled in, labelled ``measured`` or ``predicted``."""
        return replace(self, values={**self.values, **costs}, cost_source=source)

    # ------------------------------------------------------------------ the line
    def flat(self) -> dict[str, Any]:
        """The record as ``evaluations.jsonl`` holds it (one JSON object)."""
        out: dict[str, Any] = {"key": self.key, "fp": self.fp, "index": self.index}
        out.update(generation=self.generation, config=self.config)
        out.update(self.values)
        out.update(feasible=self.feasible, reason=self.reason)
        out.update(seconds_proxy=self.seconds_proxy, measured=self.measured)
        optional = {
            "score": self.score,
            "components": self.components,
            "features": self.features,
            "weights_mb": self.weights_mb,
            "genes": self.genes,
            "hardware_cached": self.hardware_cached,
            "seconds_measure": self.seconds_measure,
            "measured_on": self.measured_on,
            "measure_error": self.measure_error,
            "costs": self.cost_source,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        out.update(self.extra)
        return out

    @classmethod
    def from_flat(cls, rec: Any, space: Any = None, check: bool = True) -> Evaluation:
        """The evaluation of a line's object, every field checked (``ValueError`` naming the
        field); with ``space``, its config must be one of the space and match its key.
        ``check=False``: some of a line's fields, unchecked (tests and tools build records
        so; ``key``, ``index``, ``generation`` and ``config`` default to empty)."""
        if check:
            check_flat(rec, space)
        else:
            rec = {"key": "", "index": -1, "generation": 0, "config": {}, "feasible": True, **rec}
        values = {k: v for k, v in rec.items() if k not in _CORE and k in _value_fields()}
        extra = {k: v for k, v in rec.items() if k not in _CORE and k not in values}
        score = rec.get("score")
        return cls(
            key=rec["key"],
            config=rec["config"],
            index=rec["index"],
            generation=rec["generation"],
            feasible=rec["feasible"],
            fp=rec.get("fp"),
            reason=rec.get("reason"),
            seconds_proxy=rec.get("seconds_proxy"),
            score=math.nan if "score" in rec and score is None else score,
            components=rec.get("components"),
            values=values,
            measured=bool(rec.get("measured", False)),
            features=rec.get("features"),
            weights_mb=rec.get("weights_mb"),
            genes=rec.get("genes"),
            hardware_cached=rec.get("hardware_cached"),
            seconds_measure=rec.get("seconds_measure"),
            measured_on=rec.get("measured_on"),
            measure_error=rec.get("measure_error"),
            cost_source=rec.get("costs"),
            extra=extra,
        )


def _value_fields() -> set[str]:
    """The record fields :attr:`Evaluation.values` holds: every objective's field and
    columns, and a measurement's fields."""
    fields = {"decoder_params", "under_load", *MEASUREMENT_FIELDS}
    for o in OBJECTIVES.values():
        fields.update((o.field, *o.columns, *o.details))
    return fields - {"weights_mb", "seconds_measure"}


def _num(x: Any) -> float:
    if x is None or isinstance(x, bool):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def need(ok: bool, field: str, value: Any, expected: str) -> None:
    """``ValueError("field 'F' is V; expected E")`` unless ``ok``."""
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:60] + "..."
        raise ValueError(f"field '{field}' is {shown}; expected {expected}")


def numbers(value: Any, field: str, n: int | None = None, finite: bool = True) -> None:
    """``ValueError`` unless ``value`` is a list of ``n`` (finite) numbers."""
    ok = isinstance(value, list) and (n is None or len(value) == n)
    ok = ok and all(_is_number(v) and (not finite or math.isfinite(v)) for v in value)
    need(ok, field, value, f"a list of {n if n is not None else 'some'} finite numbers")


def check_flat(rec: Any, space: Any = None) -> None:
    """Raise ``ValueError`` (naming the field) unless ``rec`` is an evaluation line the
    search can use (see :meth:`Evaluation.from_flat`)."""
    need(isinstance(rec, dict), "record", type(rec).__name__, "a JSON object")
    need(isinstance(rec.get("key"), str), "key", rec.get("key"), "the config as compact JSON")
    need(_is_int(rec.get("index")) and rec["index"] >= 0, "index", rec.get("index"), "an integer >= 0")
    need(_is_int(rec.get("generation")), "generation", rec.get("generation"), "an integer")
    need(isinstance(rec.get("config"), dict), "config", rec.get("config"), "an object")
    need(isinstance(rec.get("feasible"), bool), "feasible", rec.get("feasible"), "true or false")
    for name in _FLAGS:
        need(isinstance(rec.get(name, False), bool), name, rec.get(name), "true or false")
    for name in _TEXTS:
        need(rec.get(name) is None or isinstance(rec[name], str), name, rec.get(name), "a string")
    for name in (*_NUMBERS, "score", *(o.field for o in OBJECTIVES.values())):
        value = rec.get(name)
        need(value is None or _is_number(value), name, value, "a number or null")
    for name in ("components", "features"):
        value = rec.get(name)
        ok = value is None or (isinstance(value, dict) and all(_is_number(v) for v in value.values()))
        need(ok, name, value, "an object of numbers")
    if rec.get("genes") is not None:
        numbers(rec["genes"], "genes", finite=False)
    if rec["feasible"] and "score" not in rec and "components" not in rec:
        raise ValueError("a feasible record without 'score' or 'components'")
    if space is not None:
        try:
            key = space.config_to_json(space.config_from_dict(rec["config"]))
        except (ValueError, TypeError, KeyError) as exc:  # ConfigError is a ValueError
            raise ValueError(f"field 'config': {exc}") from None
        need(key == rec["key"], "key", rec["key"], "the compact JSON of its config")
