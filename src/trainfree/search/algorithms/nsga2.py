"""NSGA-II (pymoo), the default: non-dominated sorting and crowding distance."""

from __future__ import annotations

from trainfree.search.algorithms.base import Optimiser, SearchProblem, register_algorithm


@register_algorithm("nsga2", summary="the default")
def nsga2(problem: SearchProblem, pop_size: int, seed: int) -> Optimiser:
    """NSGA-II with the space's operators. pymoo is imported here, when a search runs."""
    from pymoo.algorithms.moo.nsga2 import NSGA2

    from trainfree.search.algorithms._pymoo import PymooOptimiser, space_operators

    return PymooOptimiser(NSGA2(pop_size=pop_size, **space_operators()), problem, seed)
