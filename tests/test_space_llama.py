"""The ``llama`` space: configs, counts against the built stock model, the genome, the
reference models, proxies on it, and the bad-input lines. Tiny value sets keep it fast; the
reference models are counted on the meta device (nothing allocated)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch
from transformers import LlamaForCausalLM

from trainfree import get_proxy, get_space
from trainfree.errors import ConfigError
from trainfree.proxies import ProxyContext, fastinit
from trainfree.proxies.balance import prior_balance
from trainfree.proxies.fastinit import recorded_laws, same_laws
from trainfree.spaces import ProxyModel, module_groups
from trainfree.spaces.llama import params_range
from trainfree.spaces.llama_config import REFERENCES

TINY = {
    "num_hidden_layers": [1, 2],
    "hidden_size": [32, 48],
    "num_attention_heads": [2, 3, 4],
    "num_key_value_heads": [1, 2],
    "head_dim": [8, 16],
    "intermediate_size": [40, 64],
    "tokenizer": ["llama2"],
}
#: the totals the model cards / published counts state
STATED = {
    "SmolLM2-135M": 134_515_008,
    "SmolLM2-360M": 361_821_120,
    "MobileLLM-125M": 124_600_000,
    "MobileLLM-350M": 345_300_000,
    "TinyLlama-1.1B": 1_100_048_384,
}


@pytest.fixture(scope="module")
def tiny():
    space = get_space("llama", **TINY)
    rng = np.random.default_rng(0)
    return space, [space.sample(rng) for _ in range(8)]


def test_counts_equal_the_built_stock_model(tiny):
    space, configs = tiny
    for cfg in configs:
        model = space.build(cfg, seed=0)
        assert isinstance(model, LlamaForCausalLM)
        counts = space.param_counts(cfg)
        assert counts.total == model.num_parameters() == sum(p.numel() for p in model.parameters())
        groups = {k: sum(p.numel() for _, p in v) for k, v in module_groups(model).items()}
        assert groups["embedding"] == counts.embedding and groups["head"] == counts.head
        assert groups["attention"] == counts.attention and groups["ffn"] == counts.ffn
        assert groups["other"] == counts.norm  # the RMSNorm weights
        assert isinstance(model, ProxyModel)


def test_reference_models_match_their_published_totals():
    space = get_space("llama")
    refs = space.references()
    assert set(refs) == set(REFERENCES) == set(STATED)
    for name, cfg in refs.items():
        total = space.param_counts(cfg).total
        assert space.build(cfg, device="meta").num_parameters() == total  # nothing allocated
        assert math.isclose(total, STATED[name], rel_tol=5e-4), (name, total)
        # every reference architecture lies in the default value sets (its context is a setting)
        in_space = dataclasses.replace(
            cfg, max_position_embeddings=2048, rope_theta=10000.0, initializer_range=0.02
        )
        assert space.decode(space.encode(in_space)) == in_space
    lo, hi = params_range(space)
    assert 3e6 < lo < 6e6 and hi > 1.1e9


def test_flops_follow_the_tokens():
    space = get_space("llama")
    cfg = space.references()["SmolLM2-135M"]
    counts = space.param_counts(cfg)
    # one token, no context: 2 x (every matrix but the table, which a lookup reads) + attention
    assert space.decode_flops(cfg, 1) == 2 * (counts.attention + counts.ffn + 2 * 30 * 576 + 576 * 49152)
    # a prompt computes the logits of its last token only
    assert space.prefill_flops(cfg, 8) == space.flops(cfg, 8) - 2 * 7 * 576 * 49152
    assert space.kv_cache_mb(cfg, 1024) == 2 * 30 * 3 * 64 * 1024 * 4 / 2**20


def test_genome_round_trip_and_operators(tiny):
    space, configs = tiny
    rng = np.random.default_rng(1)
    for cfg in configs:
        assert space.decode(space.encode(cfg)) == cfg
        assert space.config_from_json(space.config_to_json(cfg)) == cfg
        child = space.mutate(cfg, rng)
        assert child != cfg and child.hidden_size % child.num_attention_heads == 0
        assert child.num_attention_heads % child.num_key_value_heads == 0
        space.crossover(cfg, child, rng)


def test_every_gene_pair_decodes_to_a_valid_config():
    space = get_space("llama", num_attention_heads=[9, 16], hidden_size=[128, 576], num_key_value_heads=[4])
    for vec in np.ndindex(*[len(g.choices) for g in space._genes]):
        cfg = space.decode(vec)
        assert cfg.hidden_size % cfg.num_attention_heads == 0
        assert cfg.num_attention_heads % cfg.num_key_value_heads == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "num_key_value_heads",
            2,
            r"'num_key_value_heads' is 2; expected a divisor of num_attention_heads=3",
        ),
        ("tokenizer", "gpt4", r"'tokenizer' is 'gpt4'; expected a known tokenizer: llama2 \(32,000\)"),
        ("num_attention_heads", 5, r"expected a divisor of hidden_size=48"),
        ("head_dim", 7, r"'head_dim' is 7; expected an even integer"),
        ("vocab_size", 32000, r"'vocab_size' is 32000; expected no such field"),
    ],
)
def test_bad_configs_name_the_field(field, value, message):
    space = get_space("llama")
    good = {
        "num_hidden_layers": 2,
        "hidden_size": 48,
        "num_attention_heads": 3,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "intermediate_size": 64,
        "tie_word_embeddings": True,
        "tokenizer": "llama2",
    }
    with pytest.raises(ConfigError, match=message):
        space.config_from_dict({**good, field: value})


def test_zerolm_fast_path_declared_and_checked_on_a_small_twin(tiny, monkeypatch):
    space, configs = tiny
    declared = fastinit._DECLARED[fastinit._class_name(space)]
    for cfg in configs[:4]:
        assert same_laws(declared(space, cfg), recorded_laws(space, cfg))
    big = get_space("llama").references()["TinyLlama-1.1B"]
    monkeypatch.setattr(fastinit, "_VERIFIED", {})
    built = []
    real_build = type(space).build
    monkeypatch.setattr(
        type(space), "build", lambda s, c, *a, **k: built.append(c) or real_build(s, c, *a, **k)
    )
    comps = get_proxy("zerolm").components(space, big, ProxyContext(seed=0))
    assert built and all(c.num_hidden_layers == 2 and c.head_dim == 4 for c in built)  # only the twin
    assert all(math.isfinite(v) for v in comps.values())


def test_proxies_run_and_the_balance_says_where_it_comes_from(tiny):
    space, configs = tiny
    cfg = configs[0]
    for name in ("zerolm", "decoder_params", "params", "flops"):
        assert math.isfinite(get_proxy(name)(space, cfg, ProxyContext(seed=0)))
    fast = get_proxy("zerolm").components(space, cfg, ProxyContext(seed=0))
    built = get_proxy("zerolm").components(space, cfg, ProxyContext(seed=0, options={"build": True}))
    for key in fast:  # small matrices: the built weights' sampling noise
        assert math.isclose(fast[key], built[key], rel_tol=0.05), key
    balance = prior_balance(space, proxy="zerolm")
    assert balance.beta == 0.0 and "carried over from gpt2" in balance.reason


def test_the_proxy_protocol_answers(tiny):
    space, configs = tiny
    cfg = configs[1]
    model = space.build(cfg, seed=0)
    ids = space.example_input(cfg, 2, 6)
    loss = model.mean_lm_loss(torch.cat([ids, ids[:, :1]], dim=1))
    assert loss.ndim == 0 and math.isfinite(float(loss.detach()))
    probs = model.attention_probabilities(ids)
    assert len(probs) == cfg.num_hidden_layers and probs[0].shape == (2, cfg.num_attention_heads, 6, 6)
    assert model.config._attn_implementation == "sdpa"  # restored
    assert len(model.head_projections()) == 3 * cfg.num_hidden_layers
    assert set(model.state_dict()) == set(LlamaForCausalLM(model.config).state_dict())


def test_spaces_lists_llama_without_a_benchmark():
    from typer.testing import CliRunner

    from trainfree.cli import app

    out = CliRunner().invoke(app, ["spaces"])
    assert out.exit_code == 0
    block = out.output[out.output.index("llama:") :]
    assert "benchmark: none" in block.splitlines()[2] or "benchmark: none" in block[:600]
    bench = CliRunner().invoke(app, ["bench", "--space", "llama", "--proxy", "params"])
    assert bench.exit_code == 2
    assert "space 'llama' has no benchmark" in bench.output


def test_listing_and_counting_do_not_import_transformers():
    import subprocess
    import sys

    code = (
        "import sys, trainfree; sp = trainfree.get_space('llama'); "
        "sp.param_counts(sp.references()['TinyLlama-1.1B']); print('transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
