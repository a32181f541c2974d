"""Generation-time costs (prefill, decode per token, memory at the context, the KV cache), the
gpt2 KV cache, int8 weights, generating from exported llama and gpt2 models, and the bad
inputs of all that. Tiny models and contexts: the figures of real models are in
benchmarks/bench_llama.py."""

from __future__ import annotations

import json
import logging
import math
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

import transformers
from typer.testing import CliRunner

from llama_toys import GEN, generation_search
from llama_toys import TINY as LLAMA
from trainfree import cli
from trainfree.errors import ConfigError
from trainfree.export import export_config
from trainfree.hardware import HardwareSettings
from trainfree.hardware.profiler import profile
from trainfree.objectives import OBJECTIVES, parse_limits
from trainfree.search.settings import SearchSettings
from trainfree.spaces import get_space
from trainfree.spaces.gpt2_model import KVCache


@pytest.fixture(scope="module")
def llama():
    space = get_space("llama")
    return space, space.config_from_dict(LLAMA)


@pytest.fixture(scope="module")
def gpt2():
    space = get_space(
        "gpt2", n_layer=[2], d_model=[64], d_inner=[128], n_head=[2, 4], d_embed=[-1], div_val=[2]
    )
    return space, space.sample(np.random.default_rng(1))


def test_generation_measurement_carries_its_figures(llama):
    space, cfg = llama
    m = profile(space, cfg, HardwareSettings(**GEN), isolate=False)
    assert m.ok, m.error
    for name in ("prefill_ms", "decode_ms_per_token", "memory_mb", "kv_cache_mb"):
        assert math.isfinite(getattr(m, name)) and getattr(m, name) > 0, name
    assert m.latency_ms == m.decode_ms_per_token and m.memory_mb == m.weights_mb + m.activation_mb
    assert m.kv_cache_mb == space.kv_cache_mb(cfg, 32)
    # the analytic cache is what transformers' cache holds
    model, cache = space.build(cfg), None
    with torch.no_grad():
        cache = space.new_cache(model)
        space.cached_step(model, space.example_input(cfg, 1, 32), cache)
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert held == space.kv_cache_mb(cfg, 32) * 2**20


def test_int8_weights_are_measured_apart(llama):
    space, cfg = llama
    m = profile(space, cfg, HardwareSettings(**GEN, quantize="int8"), isolate=False)
    assert m.ok, m.error
    dense = space.param_counts(cfg)
    # the untied Linears shrink to a byte per weight; the float32 table stays (tied head: + its int8 copy)
    assert m.weights_mb < dense.total * 4 / 2**20 + dense.embedding / 2**20
    forward = profile(
        space, cfg, HardwareSettings(seq_len=16, warmup=0, repeats=2, quantize="int8"), isolate=False
    )
    assert forward.ok and forward.weights_mb == m.weights_mb  # a forward pass is quantised too
    assert HardwareSettings(quantize="int8").as_dict() != HardwareSettings().as_dict()
    assert HardwareSettings().as_dict() == {  # every earlier cache key and settings file stays valid
        "backend": "torch",
        "device": "cpu",
        "batch_size": 1,
        "seq_len": 192,
        "threads": 1,
        "warmup": 2,
        "repeats": 10,
        "timeout_s": 600.0,
        "max_repeats": None,
    }


def test_gpt2_cache_gives_todays_logits(gpt2):
    space, cfg = gpt2
    model = space.build(cfg, seed=0).eval()
    ids = space.example_input(cfg, 2, 20)
    with torch.no_grad():
        full = model.log_probs(ids)
        cache = KVCache()
        parts = [model(ids[:, :12], cache)] + [model(ids[:, t : t + 1], cache) for t in range(12, 20)]
        stepped = model.head.log_prob(torch.cat(parts, 1).reshape(-1, 64)).view(2, 20, -1)
    assert float((stepped - full).abs().max()) < 1e-5
    m = profile(space, cfg, HardwareSettings(**GEN), isolate=False)
    assert m.ok and m.kv_cache_mb == space.kv_cache_mb(cfg, 32)
    too_long = profile(space, cfg, HardwareSettings(**{**GEN, "context": 512}), isolate=False)
    assert not too_long.ok and too_long.error == "context 512 exceeds the 192 positions of this architecture"


def test_exported_gpt2_generates_with_the_cache_and_says_why_not_past_its_positions(gpt2, tmp_path):
    space, cfg = gpt2
    export_config(space, cfg, tmp_path / "m")
    assert "max_length" not in json.loads((tmp_path / "m" / "generation_config.json").read_text())
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "m", trust_remote_code=True).eval()
    ids = space.example_input(cfg, 1, 5)
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = model.generate(ids, max_new_tokens=6, do_sample=False, return_dict_in_generate=True)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert not said
    assert (getattr(out, "cache", None) or getattr(out, "past_key_values", None)) is not None
    assert torch.equal(out.sequences, model.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False))
    with pytest.raises(ValueError, match=r"^this GPT-2 has 192 learned positions: .* generate at most 187$"):
        model.generate(ids, max_new_tokens=188)


def test_exported_llama_is_the_stock_class(llama, tmp_path):
    space, cfg = llama
    result = export_config(space, cfg, tmp_path / "m")
    assert result.model_type == "llama" and "modeling_trainfree.py" not in result.files
    assert json.loads((tmp_path / "m" / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert type(model) is transformers.LlamaForCausalLM
    assert model.num_parameters() == space.param_counts(cfg).total


def test_generation_objectives_and_settings():
    assert OBJECTIVES["decode"].field == "decode_ms_per_token" and OBJECTIVES["kv_cache"].source == "analytic"
    assert parse_limits(["decode=40ms", "kv_cache=1GB"]) == {"decode": 40.0, "kv_cache": 1024.0}
    gen = HardwareSettings(mode="generate")
    SearchSettings(space="llama", objectives=["decode", "memory"], hardware=gen).validate()
    with pytest.raises(ConfigError, match=r"'hardware.mode' is 'forward'; expected 'generate'"):
        SearchSettings(space="llama", objectives=["decode", "memory"]).validate()
    with pytest.raises(ConfigError, match=r"'objectives' is 'decode'; expected a cost space transxl has"):
        SearchSettings(space="transxl", objectives=["decode"], hardware=gen).validate()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"context": 100, "prompt_len": 128}, "context"),
        ({"quantize": "int4"}, "quantize"),
        ({"quantize": "int8", "backend": "onnx"}, "quantize"),
        ({"mode": "decode"}, "mode"),
    ],
)
def test_bad_generation_settings(kwargs, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        HardwareSettings(**kwargs)


def test_cli_bad_generation_input_is_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "llama", "config": LLAMA}))
    out = tmp_path / "m.json"
    runner = CliRunner()
    for args, needle in (
        (["--context", "4096"], "context 4096 exceeds the 2048 positions of this architecture"),
        (["--quantize", "int8", "--backend", "onnx"], "field 'quantize' is 'int8'; expected none"),
    ):
        res = runner.invoke(
            cli.app, ["profile", "--config", str(path), "--generate", "--json", str(out), *args]
        )
        assert res.exit_code == 2 and needle in res.output and len(res.output.strip().splitlines()) == 1
        assert not out.exists()


def test_llama_search_on_generation_costs_shows_the_references(tmp_path, monkeypatch):
    import pandas as pd

    from trainfree.search import SearchRun
    from trainfree.search.references import comparisons
    from trainfree.spaces.llama import LlamaSpace

    tiny_ref = get_space("llama").config_from_dict(LLAMA)
    monkeypatch.setattr(LlamaSpace, "references", lambda self: {"Tiny-ref": tiny_ref})
    s = generation_search(HardwareSettings(**GEN), limits={"kv_cache": 1.0})
    run = SearchRun.open(tmp_path / "run", s)
    result = run.run()
    evaluated = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    assert (evaluated["decode_ms_per_token"] > 0).all() and (evaluated["prefill_ms"] > 0).all()
    assert (evaluated["kv_cache_mb"] > 0).all()
    frontier = json.loads((tmp_path / "run" / "frontier.json").read_text())
    (ref,) = frontier["references"]
    assert ref["name"] == "Tiny-ref" and ref["measured"] and ref["decode_ms_per_token"] > 0
    assert (tmp_path / "run" / "references.csv").exists()
    (line,) = comparisons(frontier["references"], result.frontier, ["decode", "memory"])
    assert line.startswith("Tiny-ref: decode ") and "ms/token" in line


def test_references_are_measured_within_the_budgets_share_cheapest_first(tmp_path, monkeypatch):
    """A wall-time budget is a promise: a reference model expected to take longer than the
    share kept for them (TinyLlama takes over a minute in llama.cpp) is not measured, and its
    row says why; the cheaper ones are."""
    from trainfree.search import SearchRun
    from trainfree.search.references import affordable, measure_references
    from trainfree.spaces.llama import LlamaSpace

    assert affordable([30.0, 10.0, 20.0], [5.0, 1.0, 3.0], 4.5) == [1, 2]
    assert affordable([1.0], [2.0], 1.0) == []
    space = get_space("llama")
    small = space.config_from_dict(LLAMA)
    big = space.config_from_dict({**LLAMA, "num_hidden_layers": 2 * LLAMA["num_hidden_layers"]})
    monkeypatch.setattr(LlamaSpace, "references", lambda self: {"Big-ref": big, "Small-ref": small})
    run = SearchRun.open(tmp_path / "run", generation_search(HardwareSettings(**GEN)))
    try:
        seq = run.settings.hardware.seq_len
        cut = (space.flops(small, seq) + space.flops(big, seq)) / 2

        def estimate(flops):
            return [1.0 if f < cut else 500.0 for f in flops]

        rows = {row["name"]: row for row in measure_references(run, 48.0, estimate)}
    finally:
        run.close()
    assert rows["Small-ref"]["measured"] and rows["Small-ref"]["decode_ms_per_token"] > 0
    assert not rows["Big-ref"]["measured"]
    assert rows["Big-ref"]["measure_error"].startswith(
        "about 500 s to measure, more than was left of the 48 s"
    )
