"""The random-search baseline: every generation a fresh batch of uniformly sampled, never-seen
architectures; what it is told changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainfree.search.algorithms.base import SearchProblem, canonical, register_algorithm

if TYPE_CHECKING:  # numpy is imported where a search runs: listing the algorithms needs none
    import numpy as np

#: samples drawn per architecture asked for before the space counts as exhausted
TRIES_PER_ROW = 100


@register_algorithm("random", summary="the baseline")
class RandomSearch:
    """Each ``ask`` returns ``pop_size`` new uniformly random architectures (fewer, or none,
    once the space has no unseen one left)."""

    def __init__(self, problem: SearchProblem, pop_size: int, seed: int) -> None:
        self.space = problem.space
        self.pop_size = pop_size
        import numpy as np

        self.random_state = np.random.default_rng(seed)
        self.seen: set[bytes] = set()

    def ask(self) -> np.ndarray:
        import numpy as np

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
