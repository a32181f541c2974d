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

from trainfree.search.evaluation import Evaluation
from trainfree.search.evaluation import need as _need
from trainfree.search.evaluation import numbers as _numbers

#: the most architectures one replayed generation may hold (``settings.pop_size``'s maximum)
MAX_KEYS = 10_000


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def read_record(rec: Any, space: Any = None) -> Evaluation:
    """The :class:`Evaluation` of a line of ``evaluations.jsonl`` (``ValueError`` naming the
    field unless it is one the search can use; with ``space``, its config must be one of the
    space and match its key)."""
    return Evaluation.from_flat(rec, space)


def check_record(rec: Any, space: Any = None) -> None:
    """Raise ``ValueError`` (naming the field) unless ``rec`` is an evaluation line."""
    Evaluation.from_flat(rec, space)


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
