"""The random-search baseline: every generation a fresh batch of uniformly sampled, never-seen
architectures; what it is told changes nothing."""

from __future__ import annotations

import numpy as np

from trainfree.search.algorithms.base import SearchProblem, canonical, register_algorithm

#: samples drawn per architecture asked for before the space counts as exhausted
TRIES_PER_ROW = 100


@register_algorithm("random", summary="the baseline")
class RandomSearch:
    """Each ``ask`` returns ``pop_size`` new uniformly random architectures (fewer, or none,
    once the space has no unseen one left)."""

    def __init__(self, problem: SearchProblem, pop_size: int, seed: int) -> None:
        self.space = problem.space
        self.pop_size = pop_size
        self.random_state = np.random.default_rng(seed)
        self.seen: set[bytes] = set()

    def ask(self) -> np.ndarray:
        rows: list[np.ndarray] = []
        for _ in range(TRIES_PER_ROW * self.pop_size):
            if len(rows) == self.pop_size:
                break
            x = canonical(self.space, self.space.sample(self.random_state))
            if x.tobytes() not in self.seen:
                self.seen.add(x.tobytes())
                rows.append(x)
        if not rows:
            return np.empty((0, self.space.n_genes), dtype=np.int64)
        return np.array(rows).astype(np.int64)

    def tell(self, F: np.ndarray, G: np.ndarray) -> None:
        pass
