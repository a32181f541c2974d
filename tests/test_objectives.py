"""The objective registry: one declaration makes a cost available to the search, its
limits, its record and output files; the built-in objectives read as they always did."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from trainfree.errors import ConfigError
from trainfree.hardware import HardwareSettings
from trainfree.hardware.costmodel import OPTIONAL_TARGETS, TARGETS
from trainfree.objectives import (
    OBJECTIVES,
    Objective,
    bench_costs,
    generation_names,
    parse_limits,
    register_objective,
    unregister_objective,
)
from trainfree.objectives.base import COUNT_UNITS
from trainfree.search import SearchRun, SearchSettings
from trainfree.search.evaluation import Evaluation
from trainfree.search.pareto import frontier_columns, record_columns

TINY = {"n_layer": [1, 2, 3], "d_model": [64, 128], "d_inner": [128, 256], "d_embed": [-1], "div_val": [1]}


@pytest.fixture
def depth():
    """A cost declared here and nowhere else: the model's number of layers."""
    objective = register_objective(
        Objective(
            "depth",
            "depth",
            "layers",
            "",
            COUNT_UNITS,
            rank=45,
            compute=lambda space, config, workload: float(config.n_layer),
        )
    )
    yield objective
    unregister_objective("depth")


def test_the_built_in_objectives_and_what_reads_them():
    assert list(OBJECTIVES) == ["latency", "memory", "params", "flops", "prefill", "decode", "kv_cache"]
    assert (TARGETS, OPTIONAL_TARGETS) == (("latency_ms", "activation_mb"), ("prefill_ms",))
    assert list(bench_costs()) == ["flops", "params", "latency", "memory"]
    assert generation_names() == ("prefill", "decode", "kv_cache")
    assert record_columns()[:4] == ("params", "decoder_params", "flops", "costs")
    assert frontier_columns()[:3] == ("costs", "latency_ms", "memory_mb")


def test_an_objective_is_one_declaration(tmp_path, depth):
    assert "depth" in OBJECTIVES and parse_limits(["depth=2"]) == {"depth": 2.0}
    s = SearchSettings(
        space="gpt2",
        space_values=TINY,
        proxy="params",
        objectives=["flops", "depth"],
        limits={"depth": 2},
        budget="16",
        pop_size=8,
        workers=1,
        hardware=HardwareSettings(seq_len=32, warmup=0, repeats=1),
        use_cache=False,
    )
    run = SearchRun.open(tmp_path / "run", s)
    try:
        result = run.run()
    finally:
        run.close()
    assert result.evaluations == 16
    table = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    depths = [json.loads(c)["n_layer"] for c in table["config"]]
    assert table["depth"].tolist() == depths
    frontier = json.loads((tmp_path / "run" / "frontier.json").read_text())
    assert frontier["objectives"] == ["params", "flops", "depth"]
    assert frontier["models"] and all(m["depth"] <= 2 for m in frontier["models"])  # the limit holds
    line = (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()[0]
    assert Evaluation.from_flat(json.loads(line)).cost("depth") == json.loads(line)["depth"]


def test_an_unknown_objective_is_one_line():
    with pytest.raises(ConfigError, match="'objectives' is 'depth'"):
        SearchSettings(space="gpt2", objectives=["depth"]).validate()


def test_an_evaluation_line_round_trips():
    line = {
        "key": "{}",
        "fp": "f",
        "index": 3,
        "generation": 1,
        "config": {},
        "params": 10,
        "decoder_params": 8,
        "flops": 100,
        "feasible": True,
        "reason": None,
        "seconds_proxy": 0.1,
        "measured": True,
        "components": {"b": 1.0, "a": 2.0},
        "latency_ms": 1.5,
        "latency_clock": "cpu",
        "repeatable": True,
        "hardware_cached": False,
        "seconds_measure": 0.5,
        "measured_on": "local",
        "a_future_field": [1, 2],
    }
    ev = Evaluation.from_flat(line)
    assert ev.cost("latency") == 1.5 and ev.cost("params") == 10 and list(ev.components) == ["a", "b"]
    assert ev.flat() == {**line, "components": {"a": 2.0, "b": 1.0}}
    with pytest.raises(ValueError, match="field 'index'"):
        Evaluation.from_flat({**line, "index": "3"})
