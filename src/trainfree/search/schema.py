"""The shapes of a run directory's records, checked when they are read back.

A run directory is plain data that people copy, share and edit by hand, so every line of
``evaluations.jsonl`` and ``generations.jsonl`` is checked field by field before the search
uses it: a record of the wrong shape (a string index, a missing config, ``F`` with the wrong
number of columns, a ``pop_size`` of ten million) is one ``ValueError`` naming the field,
which the reader turns into a warning and a skipped line, never a traceback deep in the
search or a replay that asks pymoo for millions of individuals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from trainfree.search.objectives import MEASUREMENT_FIELDS, OBJECTIVES

#: the most architectures one replayed generation may hold (``settings.pop_size``'s maximum)
MAX_KEYS = 10_000
#: record fields that hold a number or null (NaN is written as null)
_NUMBERS = (
    "params",
    "decoder_params",
    "flops",
    "score",
    "seconds_proxy",
    "seconds_measure",
    "weights_mb",
    *(o.field for o in OBJECTIVES.values()),
    *MEASUREMENT_FIELDS,
)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _need(ok: bool, field: str, value: Any, expected: str) -> None:
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:60] + "..."
        raise ValueError(f"field '{field}' is {shown}; expected {expected}")


def _numbers(value: Any, field: str, n: int | None = None, finite: bool = True) -> None:
    ok = isinstance(value, list) and (n is None or len(value) == n)
    ok = ok and all(_is_number(v) and (not finite or math.isfinite(v)) for v in value)
    _need(ok, field, value, f"a list of {n if n is not None else 'some'} finite numbers")


def check_record(rec: Any, space: Any = None) -> None:
    """Raise ``ValueError`` (naming the field) unless ``rec`` is an evaluation record the
    search can use; with ``space``, its config must be one of the space and match its key."""
    _need(isinstance(rec, dict), "record", type(rec).__name__, "a JSON object")
    _need(isinstance(rec.get("key"), str), "key", rec.get("key"), "the config as compact JSON")
    _need(_is_int(rec.get("index")) and rec["index"] >= 0, "index", rec.get("index"), "an integer >= 0")
    _need(_is_int(rec.get("generation")), "generation", rec.get("generation"), "an integer")
    _need(isinstance(rec.get("config"), dict), "config", rec.get("config"), "an object")
    _need(isinstance(rec.get("feasible"), bool), "feasible", rec.get("feasible"), "true or false")
    for name in ("measured", "hardware_cached"):
        _need(isinstance(rec.get(name, False), bool), name, rec.get(name), "true or false")
    for name in ("fp", "reason", "measure_error", "costs"):
        _need(rec.get(name) is None or isinstance(rec[name], str), name, rec.get(name), "a string")
    for name in _NUMBERS:
        value = rec.get(name)
        _need(value is None or _is_number(value), name, value, "a number or null")
    for name in ("components", "features"):
        value = rec.get(name)
        ok = value is None or (isinstance(value, dict) and all(_is_number(v) for v in value.values()))
        _need(ok, name, value, "an object of numbers")
    if rec.get("genes") is not None:
        _numbers(rec["genes"], "genes", finite=False)
    if rec["feasible"] and "score" not in rec and "components" not in rec:
        raise ValueError("a feasible record without 'score' or 'components'")
    if space is not None:
        try:
            key = space.config_to_json(space.config_from_dict(rec["config"]))
        except (ValueError, TypeError, KeyError) as exc:  # ConfigError is a ValueError
            raise ValueError(f"field 'config': {exc}") from None
        _need(key == rec["key"], "key", rec["key"], "the compact JSON of its config")


def check_log_entry(entry: Any, n_obj: int, n_constr: int, pop_range: tuple[int, int]) -> None:
    """Raise ``ValueError`` (naming the field) unless ``entry`` is a line of
    ``generations.jsonl`` that can be replayed: ``F``/``G`` of ``len(keys)`` rows of ``n_obj``
    and ``n_constr`` finite numbers, ``pop_size`` within ``pop_range``, ``norm`` two rows of
    ``n_obj`` numbers."""
    _need(isinstance(entry, dict), "entry", type(entry).__name__, "a JSON object")
    g = entry.get("generation")
    _need(_is_int(g) and g >= 0, "generation", g, "an integer >= 0")
    elapsed = entry.get("elapsed", 0.0)
    _need(_is_number(elapsed) and math.isfinite(elapsed) and elapsed >= 0, "elapsed", elapsed, "seconds >= 0")
    pop = entry.get("pop_size")
    lo, hi = pop_range
    _need(pop is None or (_is_int(pop) and lo <= pop <= hi), "pop_size", pop, f"an integer in [{lo}, {hi}]")
    if "keys" in entry:
        keys = entry["keys"]
        ok = isinstance(keys, list) and 0 < len(keys) <= MAX_KEYS and all(isinstance(k, str) for k in keys)
        _need(ok, "keys", keys, f"a list of 1 to {MAX_KEYS} config keys")
        for name, width in (("F", n_obj), ("G", n_constr)):
            rows = entry.get(name)
            _need(isinstance(rows, list) and len(rows) == len(keys), name, rows, f"{len(keys)} rows")
            for row in rows:
                _numbers(row, name, width)
    norm = entry.get("norm")
    if norm is not None:
        _need(isinstance(norm, list) and len(norm) == 2, "norm", norm, "two rows (ideal, nadir)")
        for row in norm:
            _numbers(row, "norm", n_obj)
    balance = entry.get("balance")
    _need(balance is None or isinstance(balance, Mapping), "balance", balance, "an object or null")
