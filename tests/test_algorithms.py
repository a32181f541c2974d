"""Search algorithms: the registry (an algorithm is one module and one declaration), NSGA-III on
three objectives (a run resumed by replay is the run made in one go), and the lazy pymoo import."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search_toys import TINY, search_settings
from trainfree.search import SearchRun, SearchSettings
from trainfree.search.algorithms import (
    ALGORITHMS,
    SearchProblem,
    algorithm_help,
    canonical,
    list_algorithms,
    register_algorithm,
)
from trainfree.search.algorithms.nsga3 import partitions

#: a space with some thousands of architectures of small models
SMALL = {**TINY, "n_layer": [1, 2, 3, 4]}


def settings(**kw) -> SearchSettings:
    return search_settings(SMALL, **{"budget": "60", "pop_size": 12, **kw})


def _search(out: Path, s: SearchSettings | None = None, budget: str | None = None) -> None:
    run = SearchRun.open(out, s, budget=budget)
    try:
        run.run()
    finally:
        run.close()


def test_the_algorithms_are_registered_with_their_help():
    assert list_algorithms() == ["nsga2", "nsga3", "random"]
    assert algorithm_help() == "nsga2 (the default), nsga3 (for 3 or more objectives), random (the baseline)"


def test_nsga3_on_three_objectives_resumes_into_the_same_run(tmp_path):
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    _search(straight, settings(algorithm="nsga3"))
    _search(parts, settings(algorithm="nsga3", budget="24"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _search(parts, budget="60")  # the optimiser is rebuilt by replaying 2 generations
    assert not [w for w in caught if "does not replay" in str(w.message)]
    a, b = pd.read_csv(straight / "evaluated.csv"), pd.read_csv(parts / "evaluated.csv")
    assert len(a) == 60 and a["config"].is_unique
    assert list(a["config"]) == list(b["config"])  # the same architectures in the same order
    front_a = json.loads((straight / "frontier.json").read_text())
    front_b = json.loads((parts / "frontier.json").read_text())
    assert front_a["objectives"] == ["zerolm", "params", "flops"]
    assert [m["index"] for m in front_a["models"]] == [m["index"] for m in front_b["models"]]
    assert front_a["models"] and (straight / "frontier.csv").exists()


@pytest.mark.parametrize(
    ("n_obj", "pop_size", "expected"), [(2, 12, 11), (3, 12, 3), (4, 100, 6), (8, 12, 1)]
)
def test_nsga3_takes_the_finest_lattice_that_fits_the_population(n_obj, pop_size, expected):
    assert partitions(n_obj, pop_size) == expected


@pytest.fixture
def fake_algorithm():
    """An algorithm registered by the test alone: the first architectures of a seeded shuffle."""
    calls = {"asked": 0, "told": 0}

    @register_algorithm("_fake_first", summary="a test's")
    class FirstFound:
        def __init__(self, problem: SearchProblem, pop_size: int, seed: int) -> None:
            self.space, self.pop_size = problem.space, pop_size
            self.rng = np.random.default_rng(seed)
            self.n_obj, self.n_constr = problem.n_obj, problem.n_constr
            self.seen: set[bytes] = set()

        def ask(self) -> np.ndarray:
            calls["asked"] += 1
            rows = []
            while len(rows) < self.pop_size:
                x = canonical(self.space, self.space.sample(self.rng))
                if x.tobytes() not in self.seen:
                    self.seen.add(x.tobytes())
                    rows.append(x)
            return np.array(rows)

        def tell(self, F: np.ndarray, G: np.ndarray) -> None:
            assert F.shape == (self.pop_size, self.n_obj) and G.shape == (self.pop_size, self.n_constr)
            calls["told"] += 1

    yield calls
    ALGORITHMS.unregister("_fake_first")


def test_an_algorithm_registered_in_a_test_is_usable_by_name(tmp_path, fake_algorithm):
    assert "_fake_first" in list_algorithms()
    _search(tmp_path / "run", settings(algorithm="_fake_first", budget="24", pop_size=8))
    assert fake_algorithm == {"asked": 3, "told": 3}
    evaluated = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    assert len(evaluated) == 24 and evaluated["config"].is_unique
    saved = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert saved["algorithm"] == "_fake_first"


def test_listing_the_algorithms_imports_no_pymoo_algorithm():
    """The names (``--algorithm`` choices and help) come from the modules, which import pymoo
    only in their factories."""
    code = (
        "import sys; from trainfree.search.algorithms import list_algorithms, algorithm_help; "
        "list_algorithms(); algorithm_help(); "
        "print(sorted(m for m in sys.modules if m.startswith('pymoo.algorithms') or m.endswith('._pymoo')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("name", ["nsga2", "nsga3", "random"])
def test_an_optimiser_told_the_same_asks_the_same(name):
    """Four objectives, a constraint, failed rows (1e12) and violators: two optimisers of one
    seed told the same values ask for the same genomes (what the replay of a run relies on),
    and every genome is canonical and new to its generation (pymoo eliminates duplicates within
    the population; an architecture met again later is not evaluated again: the store has it)."""
    from trainfree import get_space
    from trainfree.search.algorithms import make_algorithm

    space = get_space("gpt2", **SMALL)
    problem = SearchProblem(space, n_obj=4, n_constr=1)
    filters = list(warnings.filters)  # NSGA-III's pymoo sets "ignore": the optimiser undoes it
    first, second = (make_algorithm(name, problem, 12, 7) for _ in range(2))
    values = np.random.default_rng(0)
    for _ in range(5):
        X = first.ask()
        assert np.array_equal(X, second.ask()) and X.shape == (12, space.n_genes)
        assert len({x.tobytes() for x in X}) == len(X)
        assert all(np.array_equal(canonical(space, space.decode(x)), x) for x in X)
        F = values.random((len(X), 4))
        F[0] = 1e12  # a failed architecture
        G = values.random((len(X), 1)) - 0.8  # a fifth of them violate the limit
        first.tell(F, G)
        second.tell(F.copy(), G.copy())
    assert warnings.filters == filters
