"""What a search algorithm is: an optimiser with ``ask`` and ``tell``, made by a registered factory.

The run drives every optimiser the same way, live and on resume: ``ask`` for genomes, have
them evaluated (live) or read their values from ``generations.jsonl`` (replay), ``tell`` the
values. Nothing of the optimiser is saved: a new one with the run's seed, told the logged
generations again, is the same optimiser (:func:`trainfree.search.state.replay`).

An algorithm is one module of this package and one declaration::

    @register_algorithm("nsga2", summary="the default")
    def nsga2(problem: SearchProblem, pop_size: int, seed: int) -> Optimiser:
        from trainfree.search.algorithms._pymoo import PymooOptimiser  # pymoo only when it runs
        ...

The registry imports every module of the package whose name does not start with ``_`` to
list the names (``--algorithm`` choices and help): heavy libraries are imported inside the
factories, so that listing them imports no pymoo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trainfree.registry import Registry

if TYPE_CHECKING:  # annotations only: listing the algorithms imports no numpy
    import numpy as np

    from trainfree.spaces import SearchSpace


@dataclass(frozen=True)
class SearchProblem:
    """What an optimiser searches: the space's genomes (``space.encode``), ``n_obj`` objectives
    to minimise and ``n_constr`` constraints (a value <= 0 is met)."""

    space: SearchSpace
    n_obj: int
    n_constr: int


class Optimiser(Protocol):
    """An ask/tell optimiser: deterministic given its seed and what it was told."""

    def ask(self) -> np.ndarray:
        """The next genomes to evaluate, one canonical integer row each (``canonical``); no
        rows: it has no new architecture left (a small space)."""
        ...

    def tell(self, F: np.ndarray, G: np.ndarray) -> None:
        """The objective values ``F`` (rows x n_obj) and constraint values ``G`` (rows x
        n_constr) of the rows the last ``ask`` returned."""
        ...


#: what a registered algorithm is: a factory of a fresh optimiser
AlgorithmFactory = Callable[[SearchProblem, int, int], Optimiser]


@dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its name, a few words for ``--help``, and its factory."""

    name: str
    summary: str
    factory: AlgorithmFactory


ALGORITHMS: Registry[Algorithm] = Registry("search algorithm", "trainfree.search.algorithms")


def register_algorithm(name: str, summary: str = "") -> Callable[[Any], Any]:
    """Decorator of a factory ``(problem, pop_size, seed) -> Optimiser`` (a function, or a class
    whose constructor takes these): makes it ``--algorithm NAME``."""

    def wrap(factory: Any) -> Any:
        ALGORITHMS.register(name, Algorithm(name, summary, factory))
        return factory

    return wrap


def make_algorithm(name: str, problem: SearchProblem, pop_size: int, seed: int) -> Optimiser:
    """A fresh optimiser of the algorithm registered as ``name``."""
    return ALGORITHMS.get(name).factory(problem, pop_size, seed)


def list_algorithms() -> list[str]:
    return ALGORITHMS.names()


def algorithm_help() -> str:
    """``nsga2 (the default), nsga3 (...), random (the baseline)``: the ``--algorithm`` help."""
    entries = (ALGORITHMS.get(name) for name in ALGORITHMS.names())
    return ", ".join(f"{a.name} ({a.summary})" if a.summary else a.name for a in entries)


def canonical(space: SearchSpace, config: Any) -> np.ndarray:
    """The genome of ``config``; ``encode(decode(x))`` of any genome, so that two genomes are
    equal exactly when they describe the same architecture (genes of layers beyond the depth
    carry no information) and duplicate elimination removes true duplicates only."""
    return space.encode(config)
