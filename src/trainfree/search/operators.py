"""pymoo glue: a search space's genome operators as pymoo sampling, crossover and mutation.

The optimiser sees an integer vector per architecture (``space.encode``). Every vector the
operators produce is *canonical* - ``encode(decode(x))`` - so that two vectors are equal
exactly when they describe the same architecture (genes of layers beyond the depth carry no
information); pymoo's duplicate elimination then removes true duplicates only.

``RandomSearch`` is the baseline with the same ask/tell interface: every generation a fresh
batch of uniformly sampled, never-seen architectures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination


class SpaceProblem(Problem):
    """The search problem as pymoo sees it: bounds of the encoding and the objective and
    constraint counts. It is never evaluated by pymoo; the run evaluates (ask/tell)."""

    def __init__(self, space: Any, n_obj: int, n_constr: int) -> None:
        lower, upper = space.bounds()
        super().__init__(
            n_var=space.n_genes, n_obj=n_obj, n_ieq_constr=n_constr, xl=lower, xu=upper, vtype=int
        )
        self.space = space


def canonical(space: Any, config: Any) -> np.ndarray:
    return space.encode(config)


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


def make_nsga2(problem: SpaceProblem, pop_size: int, seed: int) -> NSGA2:
    """NSGA-II (pymoo) with the space's operators, set up for ask/tell."""
    algorithm = NSGA2(
        pop_size=pop_size,
        sampling=SpaceSampling(),
        crossover=SpaceCrossover(),
        mutation=SpaceMutation(prob=1.0),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    return algorithm


class RandomSearch:
    """Baseline optimiser: each ``ask`` returns ``pop_size`` new uniformly random architectures."""

    def __init__(self, problem: SpaceProblem, pop_size: int, seed: int) -> None:
        self.problem = problem
        self.pop_size = pop_size
        self.random_state = np.random.default_rng(seed)
        self.seen: set[bytes] = set()

    def ask(self) -> Population:
        rows: list[np.ndarray] = []
        for _ in range(100 * self.pop_size):
            if len(rows) == self.pop_size:
                break
            x = canonical(self.problem.space, self.problem.space.sample(self.random_state))
            if x.tobytes() not in self.seen:
                self.seen.add(x.tobytes())
                rows.append(x)
        return Population.new("X", np.array(rows))

    def tell(self, infills: Population) -> None:
        pass
