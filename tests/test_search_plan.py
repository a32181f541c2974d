"""A search's settings are typed when made: the budget, limits and alpha strategy are parsed
once (from the command line's strings), and settings.json keeps its format."""

from __future__ import annotations

import pytest

from trainfree.errors import ConfigError
from trainfree.proxies.balance import AlphaStrategy
from trainfree.search.settings import Budget, SearchSettings


def test_settings_parse_the_command_lines_strings_once():
    s = SearchSettings.parse(
        space="gpt2", objectives="params,flops", limits=["params=20M"], budget="90s", alpha="0.5"
    )
    assert s.objectives == ["params", "flops"] and s.limits == {"params": 2e7}
    assert s.budget == Budget(None, 90.0, "90s") and s.alpha == AlphaStrategy("fixed", alpha=0.5)
    saved = s.to_dict()
    assert saved["budget"] == "90s" and saved["alpha"] == "0.5" and saved["limits"] == {"params": 2e7}
    assert SearchSettings.from_dict(saved) == s


def test_a_budget_knows_when_it_gives_more():
    assert Budget.parse("200").larger_than(Budget.parse("100"))
    assert not Budget.parse("1m").larger_than(Budget.parse("90s"))
    assert Budget.parse("1m").larger_than(Budget.parse("100"))  # another kind counts as more


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"budget": "ten"}, "budget"), ({"alpha": "fit:50"}, "alpha"), ({"limits": ["speed=1"]}, "max")],
)
def test_bad_strings_are_one_error(kw, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        SearchSettings.parse(space="gpt2", **kw)


def test_generation_objectives_make_the_run_measure_generation():
    """The command line and the API get the same plan: a generation cost, as an objective or
    a limit, switches the hardware to ``mode="generate"`` (it was the CLI's own rule)."""
    assert SearchSettings.parse(space="gpt2", objectives="latency,memory").hardware.mode == "forward"
    assert SearchSettings.parse(space="gpt2", objectives="decode,memory").hardware.mode == "generate"
    limited = SearchSettings.parse(space="gpt2", objectives="params", limits=["decode=20ms"])
    assert limited.hardware.mode == "generate"
