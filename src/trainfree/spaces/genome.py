"""The genome operators every space shares, derived from its genes once.

A space describes its genome as a fixed-length list of categorical genes (:class:`Gene`) and
converts configs to and from gene values (``to_genes`` / ``from_genes``, the abstract part of
:class:`~trainfree.spaces.base.SearchSpace`). Everything an evolutionary optimiser needs from
there (the integer encoding and its bounds, sampling, mutation, crossover) is
:class:`GenomeOperators`, which ``SearchSpace`` inherits: written once, apart from the
contract a space fulfils.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from trainfree.errors import ConfigError

C = TypeVar("C")


@dataclass(frozen=True)
class Gene:
    """One categorical decision of the genome: its name and the values it may take."""

    name: str
    choices: tuple[Any, ...]


class GenomeOperators(Generic[C]):
    """Encoding, sampling, mutation and crossover over ``self._genes`` (the space's genes,
    set by its constructor) through the space's ``to_genes`` / ``from_genes``."""

    _genes: list[Gene]

    def to_genes(self, config: C) -> list[Any]:  # the space's (SearchSpace declares it abstract)
        raise NotImplementedError

    def from_genes(self, values: Sequence[Any]) -> C:  # the space's
        raise NotImplementedError

    @property
    def n_genes(self) -> int:
        return len(self._genes)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive integer bounds of the encoding, as an optimiser wants them."""
        upper = np.array([len(g.choices) - 1 for g in self._genes], dtype=np.int64)
        return np.zeros_like(upper), upper

    def encode(self, config: C) -> np.ndarray:
        """Integer vector (index of each gene's value in its choices)."""
        out = np.empty(len(self._genes), dtype=np.int64)
        for i, (gene, value) in enumerate(zip(self._genes, self.to_genes(config), strict=True)):
            try:
                out[i] = gene.choices.index(value)
            except ValueError:
                raise ConfigError(
                    gene.name, value, f"one of {list(gene.choices)} (the space's value set)"
                ) from None
        return out

    def gene_values(self, config: C) -> list[float]:
        """One number per gene, like :meth:`encode` but never refused: a numeric value as it
        is, another value as its index in the gene's choices, NaN where it is neither (a
        config from outside the value sets). The inputs of the cost model's shape correction."""
        out = []
        for gene, value in zip(self._genes, self.to_genes(config), strict=True):
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append(float(value))
            else:
                out.append(float(gene.choices.index(value)) if value in gene.choices else float("nan"))
        return out

    def decode(self, vector: Sequence[int] | np.ndarray) -> C:
        vec = np.asarray(vector)
        if vec.shape != (len(self._genes),):
            raise ConfigError("<vector>", vec.shape, f"an integer vector of length {len(self._genes)}")
        values = []
        for gene, idx in zip(self._genes, vec, strict=True):
            i = int(idx)
            if not 0 <= i < len(gene.choices):
                raise ConfigError(gene.name, i, f"an index in [0, {len(gene.choices) - 1}]")
            values.append(gene.choices[i])
        return self.from_genes(values)

    def sample(self, rng: np.random.Generator) -> C:
        """A uniformly random genome, decoded."""
        return self.decode([rng.integers(len(g.choices)) for g in self._genes])

    def mutate(self, config: C, rng: np.random.Generator, rate: float | None = None) -> C:
        """Resample each gene with probability ``rate`` (default 1/#genes) to a *different*
        value; retried until the decoded architecture differs from the parent."""
        vec = self.encode(config)
        rate = 1.0 / len(self._genes) if rate is None else rate
        mutable = [i for i, g in enumerate(self._genes) if len(g.choices) > 1]
        if not mutable:
            return config
        for _ in range(100):
            child = vec.copy()
            hits = [i for i in mutable if rng.random() < rate] or [int(rng.choice(mutable))]
            for i in hits:
                n = len(self._genes[i].choices)
                child[i] = (child[i] + rng.integers(1, n)) % n  # uniform over the others
            out = self.decode(child)
            if out != config:
                return out
        return out

    def crossover(self, a: C, b: C, rng: np.random.Generator) -> C:
        """Uniform crossover: each gene from either parent with probability 1/2."""
        va, vb = self.encode(a), self.encode(b)
        take_a = rng.random(len(va)) < 0.5
        return self.decode(np.where(take_a, va, vb))
