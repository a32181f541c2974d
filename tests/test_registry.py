import numpy as np
import pytest
import torch
from torch import nn

from trainfree import get_proxy, get_space, list_proxies, list_spaces
from trainfree.errors import ConfigError
from trainfree.proxies._lm import output_logits
from trainfree.registry import Registry
from trainfree.spaces.protocol import ProxyModel


def test_all_spaces_and_proxies_discovered():
    assert {"flexibert", "flexibert-published", "gpt2", "transxl"} <= set(list_spaces())
    assert {"params", "decoder_params", "flops"} <= set(list_proxies())
    p = get_proxy("decoder_params")
    assert not (p.needs_model or p.needs_data or p.needs_grad)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match=r"known: .*gpt2"):
        get_space("gpt3")
    with pytest.raises(KeyError, match=r"known: .*params"):
        get_proxy("magic")


def test_double_registration_refused():
    reg: Registry[int] = Registry("thing", "trainfree.proxies")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a", 2)


@pytest.mark.parametrize("name", ["flexibert", "flexibert-published", "gpt2", "transxl"])
def test_genome_operators_stay_in_space(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    lower, upper = space.bounds()
    for _ in range(20):
        a, b = space.sample(rng), space.sample(rng)
        for c in (a, space.mutate(a, rng), space.crossover(a, b, rng)):
            vec = space.encode(c)
            assert ((vec >= lower) & (vec <= upper)).all()
            assert space.decode(vec) == c
            assert space.config_from_json(space.config_to_json(c)) == c
        assert space.mutate(a, rng) != a


def test_value_sets_are_configurable_and_validated():
    space = get_space("gpt2", n_layer=[3])
    rng = np.random.default_rng(0)
    assert all(space.sample(rng).n_layer == 3 for _ in range(5))
    with pytest.raises(ConfigError, match="n_layers_typo"):
        get_space("gpt2", n_layers_typo=[3])
    with pytest.raises(ConfigError, match="non-empty list"):
        get_space("gpt2", n_layer=[])


def test_encode_rejects_values_outside_the_value_sets():
    narrow = get_space("gpt2", n_layer=[2, 3])
    full, rng = get_space("gpt2"), np.random.default_rng(3)
    wide = next(c for c in (full.sample(rng) for _ in range(100)) if c.n_layer > 3)
    with pytest.raises(ConfigError, match="n_layer"):
        narrow.encode(wide)


@pytest.mark.parametrize("name", ["flexibert", "flexibert-published", "gpt2", "transxl"])
def test_models_implement_the_proxy_protocol(name):
    """Proxies ask models, not attribute names: every space's model answers ProxyModel."""
    space = get_space(name)
    model = space.build(space.sample(np.random.default_rng(0)), device="meta")
    assert isinstance(model, ProxyModel)
    assert len(model.head_projections()) >= len(model.blocks) and len(model.ffn_activations()) >= 1


def test_proxy_helpers_refuse_a_foreign_module_clearly():
    with pytest.raises(TypeError, match=r"does not implement trainfree\.spaces\.protocol\.ProxyModel"):
        output_logits(nn.Linear(2, 2), torch.zeros(1, 2))
