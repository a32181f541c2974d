"""pymoo glue: the space's genome operators as pymoo operators, and a pymoo algorithm as an
:class:`~trainfree.search.algorithms.base.Optimiser`.

The optimiser sees an integer vector per architecture (``space.encode``). Every vector the
operators produce is canonical (:func:`~trainfree.search.algorithms.base.canonical`), so
pymoo's duplicate elimination removes true duplicates only.

The module name starts with ``_``: the registry's discovery does not import it, so listing
the algorithms imports no pymoo; the factories import it when a search runs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm as PymooAlgorithm
from pymoo.core.crossover import Crossover
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem

from trainfree.search.algorithms.base import SearchProblem, canonical


class SpaceProblem(Problem):
    """The search problem as pymoo sees it: bounds of the encoding and the objective and
    constraint counts. It is never evaluated by pymoo; the run evaluates (ask/tell)."""

    def __init__(self, space: Any, n_obj: int, n_constr: int) -> None:
        lower, upper = space.bounds()
        super().__init__(
            n_var=space.n_genes, n_obj=n_obj, n_ieq_constr=n_constr, xl=lower, xu=upper, vtype=int
        )
        self.space = space


class SpaceSampling(Sampling):
    def _do(self, problem: SpaceProblem, n_samples: int, *args: Any, random_state: Any = None, **kw: Any):
        space = problem.space
        return np.array([canonical(space, space.sample(random_state)) for _ in range(n_samples)])


class SpaceCrossover(Crossover):
    """The space's uniform crossover; two children per pair (one from each parent's side)."""

    def __init__(self, prob: float = 0.9) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=prob)

    def _do(self, problem: SpaceProblem, X: np.ndarray, *args: Any, random_state: Any = None, **kw: Any):
        space = problem.space
        _, n_matings, n_var = X.shape
        out = np.empty((2, n_matings, n_var), dtype=X.dtype)
        for k in range(n_matings):
            a, b = space.decode(X[0, k]), space.decode(X[1, k])
            out[0, k] = canonical(space, space.crossover(a, b, random_state))
            out[1, k] = canonical(space, space.crossover(b, a, random_state))
        return out


class SpaceMutation(Mutation):
    """The space's mutation (each gene resampled with probability 1/#genes, at least one)."""

    def _do(self, problem: SpaceProblem, X: np.ndarray, *args: Any, random_state: Any = None, **kw: Any):
        space = problem.space
        return np.array([canonical(space, space.mutate(space.decode(x), random_state)) for x in X])


def space_operators() -> dict[str, Any]:
    """The keyword arguments that give a pymoo genetic algorithm the space's operators."""
    return {
        "sampling": SpaceSampling(),
        "crossover": SpaceCrossover(),
        "mutation": SpaceMutation(prob=1.0),
        "eliminate_duplicates": True,
    }


class PymooOptimiser:
    """A pymoo algorithm behind the ask/tell protocol. It keeps the population it handed out
    (pymoo is told the population it asked for, with the values set on it).

    pymoo calls run inside ``warnings.catch_warnings()``: NSGA-III's normalisation sets a
    global "ignore" warnings filter (pymoo 0.6.2, ``get_nadir_point``), which would silence
    the run's own warnings after it."""

    def __init__(self, algorithm: PymooAlgorithm, problem: SearchProblem, seed: int) -> None:
        self.problem = SpaceProblem(problem.space, n_obj=problem.n_obj, n_constr=problem.n_constr)
        with warnings.catch_warnings():
            algorithm.setup(self.problem, termination=NoTermination(), seed=seed, verbose=False)
        self.algorithm = algorithm
        self._asked: Population | None = None

    def ask(self) -> np.ndarray:
        with warnings.catch_warnings():
            pop = self.algorithm.ask()
        if pop is None or len(pop) == 0:
            self._asked = None
            return np.empty((0, self.problem.n_var), dtype=np.int64)
        self._asked = pop
        return pop.get("X").astype(np.int64)

    def tell(self, F: np.ndarray, G: np.ndarray) -> None:
        if self._asked is None:
            raise RuntimeError("tell() without a population asked for")
        pop, self._asked = self._asked, None
        PymooEvaluator().eval(StaticProblem(self.problem, F=F, G=G), pop)
        with warnings.catch_warnings():
            self.algorithm.tell(infills=pop)
