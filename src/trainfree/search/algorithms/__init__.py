"""Search algorithms: one module and one ``@register_algorithm`` declaration each.

See :mod:`trainfree.search.algorithms.base` for the optimiser protocol (ask / tell) and the
registry; ``nsga2`` (the default), ``nsga3`` (three or more objectives) and ``random`` (the
baseline) are its modules; ``_pymoo`` is the glue that drives a pymoo algorithm with the space's
genome operators.
"""

from trainfree.search.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    Optimiser,
    SearchProblem,
    algorithm_help,
    canonical,
    list_algorithms,
    make_algorithm,
    register_algorithm,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Optimiser",
    "SearchProblem",
    "algorithm_help",
    "canonical",
    "list_algorithms",
    "make_algorithm",
    "register_algorithm",
]
