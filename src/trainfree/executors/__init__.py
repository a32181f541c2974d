"""Executors: where proxy scoring and device measurement tasks run (local pool or Ray).

``make_executor("local")`` is today's behaviour and imports nothing of Ray;
``make_executor("ray", address=..., measure_on="pi4")`` scores on a Ray cluster and measures on
the nodes carrying the ``pi4`` resource. See :mod:`trainfree.executors.base` and
docs/scale-out.md.
"""

from trainfree.executors.base import (
    EXECUTORS,
    LOCAL_NODE,
    Executor,
    ExecutorError,
    MeasureResult,
    Scorer,
    default_executor,
    make_executor,
    register_executor,
)


def list_executors() -> list[str]:
    return EXECUTORS.names()


__all__ = [
    "EXECUTORS",
    "LOCAL_NODE",
    "Executor",
    "ExecutorError",
    "MeasureResult",
    "Scorer",
    "default_executor",
    "list_executors",
    "make_executor",
    "register_executor",
]
