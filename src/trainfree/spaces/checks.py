"""Validation helpers of the config parsers: one :class:`ConfigError` naming the field, the
value and what was expected (prefixed with ``where``, e.g. the file), for every bad field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainfree.errors import ConfigError


def get_field(data: Mapping[str, Any], field: str, where: str | None = None) -> Any:
    if field not in data:
        raise ConfigError(field, None, "a value (the field is missing)", where)
    return data[field]


def check_int(value: Any, field: str, minimum: int = 1, where: str | None = None) -> int:
    """An int (bools and floats with a fraction refused) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)):
        raise ConfigError(field, value, f"an integer >= {minimum}", where)
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(field, value, f"an integer >= {minimum}", where)
    if int(value) < minimum:
        raise ConfigError(field, value, f"an integer >= {minimum}", where)
    return int(value)


def check_choice(value: Any, field: str, choices: Sequence[Any], where: str | None = None) -> Any:
    if value not in choices:
        raise ConfigError(field, value, f"one of {list(choices)}", where)
    return value


def check_int_list(
    value: Any, field: str, length: int, minimum: int = 1, where: str | None = None
) -> tuple[int, ...]:
    """A list of exactly ``length`` ints (a scalar is repeated: homogeneous models)."""
    if isinstance(value, (list, tuple)):
        if len(value) != length:
            raise ConfigError(field, value, f"a list of {length} integers (one per layer)", where)
        return tuple(check_int(v, f"{field}[{i}]", minimum, where) for i, v in enumerate(value))
    return (check_int(value, field, minimum, where),) * length
