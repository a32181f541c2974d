"""The search's cost objectives: :mod:`trainfree.objectives` (kept under its former path)."""

from trainfree.objectives import (
    OBJECTIVES,
    Objective,
    check_limits,
    check_objectives,
    get_objective,
    limit_text,
    measured_names,
    needs_device,
    needs_generation,
    parse_limits,
    unitless_limits,
)
from trainfree.search.evaluation import MEASUREMENT_FIELDS

__all__ = [
    "MEASUREMENT_FIELDS",
    "OBJECTIVES",
    "Objective",
    "check_limits",
    "check_objectives",
    "get_objective",
    "limit_text",
    "measured_names",
    "needs_device",
    "needs_generation",
    "parse_limits",
    "unitless_limits",
]
