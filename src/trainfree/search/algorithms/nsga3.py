"""NSGA-III (pymoo): for three or more objectives, e.g. ``--objectives latency,memory,params``
(three costs and the proxy: four objectives).

Why NSGA-III: with three or more objectives most of a population is non-dominated, and
NSGA-II's crowding distance no longer spreads it over the front; NSGA-III keeps it spread by
filling niches around reference directions, on objectives normalised to the front's extent
(so that parameters, FLOPs and milliseconds of very different scales weigh alike). AGE-MOEA2
was the other candidate (no reference directions: it estimates the front's geometry), but
pymoo 0.6.2's AGE-MOEA and AGE-MOEA2 need numba at import, a JIT compiler the project does
not otherwise depend on; NSGA-III needs numpy only, and its reference directions for the
search's populations (12 to 100) are a cheap, deterministic Das-Dennis lattice.
"""

from __future__ import annotations

from math import comb

from trainfree.search.algorithms.base import Optimiser, SearchProblem, register_algorithm


def partitions(n_obj: int, pop_size: int) -> int:
    """The finest Das-Dennis lattice (divisions per objective) with at most ``pop_size``
    directions (``comb(p + n_obj - 1, n_obj - 1)`` of them; at least one division), as pymoo
    asks for a population no smaller than its reference directions."""
    p = 1
    while comb(p + 1 + n_obj - 1, n_obj - 1) <= pop_size:
        p += 1
    return p


@register_algorithm("nsga3", summary="for 3 or more objectives")
def nsga3(problem: SearchProblem, pop_size: int, seed: int) -> Optimiser:
    """NSGA-III with the space's operators and a Das-Dennis set of reference directions."""
    from pymoo.algorithms.moo.nsga3 import NSGA3
    from pymoo.util.ref_dirs import get_reference_directions

    from trainfree.search.algorithms._pymoo import PymooOptimiser, space_operators

    directions = get_reference_directions(
        "das-dennis", problem.n_obj, n_partitions=partitions(problem.n_obj, pop_size)
    )
    return PymooOptimiser(NSGA3(ref_dirs=directions, pop_size=pop_size, **space_operators()), problem, seed)
