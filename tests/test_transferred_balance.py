"""The label-free default of the language-model spaces: a balance fitted on the space's
published benchmark, transferred; never judged on the labels it was fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from trainfree import get_proxy, get_space
from trainfree.bench.balanced import evaluate_balanced
from trainfree.bench.loaders import load_benchmark
from trainfree.proxies import ProxyContext
from trainfree.proxies.balance import (
    AlphaStrategy,
    Balance,
    choose,
    combine,
    entry_digest,
    fit_balance,
)
from trainfree.proxies.transferred import TRANSFERRED


def _components(space, configs, proxy="zerolm") -> dict[str, np.ndarray]:
    p = get_proxy(proxy)
    rows = [p.components(space, c, ProxyContext()) for c in configs]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_each_proxy_gets_its_own_transferred_balance_and_the_others_keep_their_prior():
    gpt2, transxl, flex = get_space("gpt2"), get_space("transxl"), get_space("flexibert")
    zerolm = choose("heuristic", space=gpt2, proxy="zerolm")
    assert zerolm == Balance(0.72, "sum", 0.32) and zerolm.source == "gpt2"
    assert "LTS GPT-2" in zerolm.reason and "transferred" in zerolm.reason
    assert choose("heuristic", space=transxl, proxy="zerolm") == Balance(0.33, "sum", 0.12)
    assert choose("heuristic", space=gpt2, proxy="param_mix") == Balance(0.72, "sum", 0.26)
    assert choose("heuristic", space=gpt2) == Balance(0.5, "sum")  # no proxy named: the prior
    assert choose("0.3", space=gpt2, proxy="zerolm") == Balance(0.3, "sum")  # a fixed alpha: no beta
    assert choose("heuristic", space=flex, proxy="zerolm") == Balance(0.5, "layer")


def test_a_proxy_called_alone_scores_with_its_spaces_default():
    space = get_space("gpt2")
    config = space.sample(np.random.default_rng(0))
    proxy = get_proxy("zerolm")
    comps = proxy.components(space, config)
    expected = combine(comps, choose("heuristic", space=space, proxy="zerolm"))
    assert proxy(space, config) == pytest.approx(float(expected))


@pytest.mark.parametrize("name", ["gpt2", "transxl"])
def test_the_shipped_balances_follow_from_the_published_benchmarks(data_dir, name):
    bench = load_benchmark(name)
    truth = np.array([e.ground_truth for e in bench.entries])
    shipped = TRANSFERRED[name]
    assert sorted(entry_digest(e.id, e.ground_truth) for e in bench.entries) == list(shipped["entries"])
    for proxy, b in shipped["balances"].items():
        comps = _components(bench.space, [e.config for e in bench.entries], proxy)
        fitted = fit_balance(comps, truth, bench.higher_is_better)
        assert fitted.aggregate == b["aggregate"], proxy
        assert abs(fitted.alpha - b["alpha"]) <= 0.0051 and abs(fitted.beta - b["beta"]) <= 0.0051, proxy


def test_the_default_is_judged_held_out_on_its_source_and_on_all_of_another_set(data_dir):
    bench = load_benchmark("gpt2")
    ids = [e.id for e in bench.entries]
    truth = np.array([e.ground_truth for e in bench.entries])
    comps = _components(bench.space, [e.config for e in bench.entries])
    heuristic = AlphaStrategy("heuristic")
    kwargs = {"space": bench.space, "ids": ids, "proxy": "zerolm", "repeats": 5}
    splits: list = []
    _, own = evaluate_balanced(comps, truth, False, heuristic, splits=splits, **kwargs)
    assert own["n"] == 100 and own["protocol"]["fit_on"] == 100 and len(splits) == 5
    assert own["alpha_strategy"] == "heuristic" and "refitted" in own["protocol"]["description"]
    # the same architectures trained elsewhere (other labels): the balance is carried over as is
    other = truth * np.random.default_rng(0).uniform(0.9, 1.1, len(truth))
    scores, result = evaluate_balanced(comps, other, False, heuristic, **kwargs)
    assert result["n"] == 200 and "protocol" not in result and result["beta"] == 0.32
    assert np.allclose(scores, combine(comps, Balance(0.72, "sum", 0.32)))


def test_a_runs_saved_balance_round_trips_and_a_damaged_one_is_chosen_again():
    from dataclasses import asdict

    from trainfree.search.state import saved_balance as _saved_balance

    shipped = choose("heuristic", space=get_space("gpt2"), proxy="zerolm")
    again = _saved_balance(asdict(shipped))
    assert again == shipped and again.reason == shipped.reason and again.source == "gpt2"
    damages = ({"alpha": "x", "aggregate": "sum"}, {"alpha": 0.5, "aggregate": "max"}, [0.5], {"beta": 1})
    for damaged in damages:
        with pytest.warns(RuntimeWarning, match="balance"):
            assert _saved_balance(damaged) is None


def test_a_handful_of_its_source_models_is_refused_in_one_line(data_dir):
    bench = load_benchmark("gpt2")
    few = bench.entries[:4]
    comps = _components(bench.space, [e.config for e in few])
    truth = np.array([e.ground_truth for e in few])
    with pytest.raises(ValueError, match="too few to judge it held out"):
        evaluate_balanced(comps, truth, False, AlphaStrategy("heuristic"), space=bench.space,
                          ids=[e.id for e in few], proxy="zerolm")  # fmt: skip
