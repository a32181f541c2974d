"""zerolm's fresh-initialisation fast path (proxies.fastinit): laws, agreement, fallbacks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from trainfree import get_proxy, get_space
from trainfree.proxies import ProxyContext, fastinit
from trainfree.proxies.fastinit import LawUnknown, recorded_laws, same_laws
from trainfree.proxies.zerolm import zerolm_components

LTS_SMALL = {"n_layer": [2, 3], "d_model": [128, 256], "d_inner": [256, 512], "d_embed": [128]}


def _configs(name: str, n: int, **values):
    space = get_space(name, **values)
    rng = np.random.default_rng(7)
    return space, [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", ["gpt2", "transxl", "flexibert", "flexibert-published"])
def test_declared_laws_equal_the_recorded_build(name):
    space, configs = _configs(name, 12)
    if name in ("gpt2", "transxl"):  # the LTS variants: one table, uniform init
        configs.append(dataclasses.replace(configs[0], div_val=1, d_embed=configs[0].d_model // 2))
        configs.append(dataclasses.replace(configs[1], div_val=1, d_embed=configs[1].d_model))
        configs.append(dataclasses.replace(configs[2], weight_init_type="uniform"))
    declared = fastinit._DECLARED[fastinit._class_name(space)]
    for cfg in configs:
        assert same_laws(declared(space, cfg), recorded_laws(space, cfg)), cfg


@pytest.mark.parametrize("name", ["gpt2", "transxl", "flexibert"])
def test_fast_path_matches_the_built_path_and_builds_nothing(name, monkeypatch):
    values = LTS_SMALL if name != "flexibert" else {"n_layer": [2], "num_ff": [1, 2]}
    space, configs = _configs(name, 2, **values)
    proxy = get_proxy("zerolm")
    built = [zerolm_components(space.build(c, seed=0), fresh_init=True) for c in configs]
    monkeypatch.setattr(type(space), "build", lambda *a, **k: pytest.fail("the fast path built a model"))
    monkeypatch.setattr(fastinit, "_VERIFIED", {fastinit._class_name(space): True})
    for cfg, ref in zip(configs, built, strict=True):
        fast = proxy.components(space, cfg, ProxyContext(seed=3))
        assert fast.keys() == ref.keys()
        for key in fast:  # the built path's own seed noise: < 0.3% (test_zerolm)
            assert math.isclose(fast[key], ref[key], rel_tol=3e-3), (key, fast[key], ref[key])


class _Toy(nn.Module):
    def __init__(self, init: str) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.blocks = nn.ModuleList([nn.Module()])
        self.blocks[0].attn = nn.Linear(16, 16, bias=False)
        self.blocks[0].ffn = nn.Linear(16, 32, bias=False)
        with torch.no_grad():
            nn.init.normal_(self.embedding.weight, 0.0, 0.02)
            nn.init.uniform_(self.blocks[0].attn.weight, -0.1, 0.1)
            if init == "trunc":
                nn.init.trunc_normal_(self.blocks[0].ffn.weight, std=0.02)
            elif init == "shifted":
                nn.init.normal_(self.blocks[0].ffn.weight, 1.0, 0.02)
            else:
                nn.init.normal_(self.blocks[0].ffn.weight, 0.0, 0.05)


class _ToySpace:
    """A duck-typed space with no declared laws."""

    name = "toy"

    def __init__(self, init: str) -> None:
        self.init, self.builds = init, 0

    def build(self, config, seed=0, device=None):
        self.builds += 1
        torch.manual_seed(seed)
        return _Toy(self.init)


def test_recorded_laws_of_any_space():
    laws = {law.name: law for law in recorded_laws(_ToySpace("normal"), None)}
    assert laws["blocks.0.attn.weight"].std == pytest.approx(0.2 / math.sqrt(12))
    assert laws["blocks.0.ffn.weight"].std == pytest.approx(0.05)
    assert (laws["embedding.weight"].rows, laws["embedding.weight"].cols) == (50, 16)


@pytest.mark.parametrize("init", ["trunc", "shifted"])
def test_unknown_or_uncentred_laws_fall_back_to_building(init):
    space = _ToySpace(init)
    with pytest.raises(LawUnknown):
        recorded_laws(space, None)
    space.builds = 0
    comps = get_proxy("zerolm").components(space, None, ProxyContext())
    assert space.builds == 2  # one recording (fills skipped), then the real model
    assert comps == zerolm_components(space.build(None, seed=0), fresh_init=True)


def test_a_declared_table_that_disagrees_is_switched_off(monkeypatch):
    space, (cfg,) = _configs("flexibert", 1, n_layer=[2])
    name = fastinit._class_name(space)
    wrong = [dataclasses.replace(law, std=2 * law.std) for law in fastinit.flexibert_laws(space, cfg)]
    monkeypatch.setitem(fastinit._DECLARED, name, lambda s, c: wrong)
    monkeypatch.setattr(fastinit, "_VERIFIED", {})
    with pytest.warns(RuntimeWarning, match="do not match"):
        laws = fastinit.fresh_init_laws(space, cfg)
    assert same_laws(laws, recorded_laws(space, cfg)) and fastinit._VERIFIED[name] is False
    assert same_laws(fastinit.fresh_init_laws(space, cfg), recorded_laws(space, cfg))


def test_cache_key_carries_the_proxy_version():
    from trainfree.runtime.score_cache import ScoreCache

    space, (cfg,) = _configs("flexibert", 1, n_layer=[2])
    proxy = get_proxy("zerolm")
    spec = ScoreCache.spec(space, cfg, proxy, 0, None, None, {})
    assert spec["proxy_version"] == proxy.version >= 2
    newer = dataclasses.replace(proxy, version=proxy.version + 1)
    bumped = ScoreCache.spec(space, cfg, newer, 0, None, None, {})
    assert ScoreCache.key(spec) != ScoreCache.key(bumped)
