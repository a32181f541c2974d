"""The baseline proxy zoo on tiny models of every space: runs, is finite, deterministic, side-effect free."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainfree import get_proxy, get_space
from trainfree.proxies import ProxyContext
from trainfree.proxies._lm import attention_probabilities, covariance_score, token_batch
from trainfree.proxies.wpca import pca_dimension

BASELINES = {
    # name: (needs_data, needs_grad)
    "synflow": (False, True),
    "logsynflow": (False, True),
    "snip": (True, True),
    "grasp": (True, True),
    "fisher": (True, True),
    "grad_norm": (True, True),
    "jacob_cov": (True, True),
    "jacobian_score": (True, True),
    "activation_distance": (True, False),
    "synaptic_diversity": (True, True),
    "synaptic_saliency": (True, True),
    "head_importance": (True, True),
    "head_confidence": (True, False),
    "softmax_confidence": (True, False),
    "attention_confidence": (True, False),
    "wpca": (True, False),
}
LM = dict(d_embed=[-1], d_inner=[96], n_head=[2], n_token=[300], cutoffs=[[100, 200, 300]], tgt_len=[24])
SPACES = {
    "flexibert": dict(hidden_size=[32], n_layer=[2], num_heads=[2], ffn_dim=[48], num_ff=[1, 2]),
    "gpt2": dict(n_layer=[2], d_model=[32], div_val=[2], **LM),
    "transxl": dict(n_layer=[2], d_model=[32], div_val=[2], mem_len=[24], **LM),
}


def _ctx(**kw) -> ProxyContext:
    return ProxyContext(seed=0, batch_size=2, seq_len=12, **kw)


@pytest.fixture(scope="module", params=sorted(SPACES))
def arch(request):
    name = request.param
    space = get_space(name, **SPACES[name])
    if name == "flexibert":  # every mixer type in one model
        config = space.config_from_dict(
            {
                "hidden_size": 32,
                "layers": [
                    {
                        "operation_type": t,
                        "operation_parameter": p,
                        "num_heads": 2,
                        "ffn_dim": 48,
                        "num_ff": f,
                    }
                    for t, p, f in (("SA", "WMA", 2), ("LT", "DCT", 1), ("DSC", 5, 1))
                ],
            }
        )
    else:
        config = space.sample(np.random.default_rng(0))
    return name, space, config


def test_needs_are_declared():
    for name, (data, grad) in BASELINES.items():
        proxy = get_proxy(name)
        assert (proxy.needs_model, proxy.needs_data, proxy.needs_grad) == (True, data, grad), name
        assert proxy.description


def test_every_baseline_runs_finite_deterministic_and_leaves_the_model_alone(arch):
    _, space, config = arch
    ctx = _ctx()
    model = ctx.model(space, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in BASELINES:
        value = get_proxy(name)(space, config, ctx)
        assert isinstance(value, float) and math.isfinite(value), name
        assert value == get_proxy(name)(space, config, _ctx()), f"{name} is not deterministic"
        assert all(p.grad is None for p in model.parameters()), f"{name} left gradients"
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), (
            f"{name} changed weights"
        )


def test_synflow_ignores_the_data(arch):
    _, space, config = arch
    for name in ("synflow", "logsynflow"):
        a = get_proxy(name)(space, config, _ctx())
        b = get_proxy(name)(space, config, _ctx(options={"data_seed": 123}))
        assert a == b > 0


def test_data_proxies_see_the_data(arch):
    _, space, config = arch
    for name in ("snip", "head_confidence", "activation_distance"):
        a = get_proxy(name)(space, config, _ctx())
        b = get_proxy(name)(space, config, _ctx(options={"data_seed": 123}))
        assert a != b, name


def test_confidence_proxies_follow_the_attention_probabilities(arch):
    """Sharpening every softmax (scaling the scores up) raises both confidences."""
    name, space, config = arch
    ctx = _ctx()
    model = ctx.model(space, config)
    base = {p: get_proxy(p)(space, config, ctx) for p in ("attention_confidence", "softmax_confidence")}
    hooks = []
    for block in model.blocks:
        attn = block.attn
        target = getattr(attn, "attn_dropout", None) or getattr(attn, "dropatt", None)
        if target is not None:  # LM models: sharpen the probabilities where they pass
            dim = -1 if name == "gpt2" else 1
            hooks.append(
                target.register_forward_pre_hook(lambda m, a, d=dim: (torch.softmax(8 * a[0].log(), d),))
            )
        else:
            hooks.append(attn.softmax.register_forward_pre_hook(lambda m, a: (8 * a[0],)))
    try:
        sharp = {p: get_proxy(p)(space, config, ctx) for p in base}
    finally:
        for h in hooks:
            h.remove()
    assert sharp["attention_confidence"] > base["attention_confidence"]
    assert sharp["softmax_confidence"] > base["softmax_confidence"]


def test_attention_probabilities_are_distributions(arch):
    _, space, config = arch
    ctx = _ctx()
    model = ctx.model(space, config)
    probs = attention_probabilities(model, token_batch(space, config, ctx), 0, with_lt=False)
    assert probs
    for p in probs:
        assert p.shape[0] == 2 and p.shape[2] == 12  # [B, h, T, K]
        assert torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5)


def test_head_importance_is_snip_restricted_to_head_projections(arch):
    _, space, config = arch
    assert 0 < get_proxy("head_importance")(space, config, _ctx()) < get_proxy("snip")(space, config, _ctx())


def test_lm_and_sum_objectives_differ():
    space = get_space("flexibert", **SPACES["flexibert"])
    config = space.sample(np.random.default_rng(1))
    lm = get_proxy("snip")(space, config, _ctx())
    ones = get_proxy("snip")(space, config, _ctx(options={"objective": "sum"}))
    assert ones < 1e-2 * lm  # the summed post-LayerNorm state has (numerically) no gradient


def test_statistics():
    rng = np.random.default_rng(0)
    independent = covariance_score(rng.standard_normal((8, 200)))
    duplicated = covariance_score(np.repeat(rng.standard_normal((1, 200)), 8, axis=0))
    assert independent > duplicated  # decorrelated Jacobians score higher
    x = torch.from_numpy(rng.standard_normal((500, 3)) @ rng.standard_normal((3, 40)))
    assert pca_dimension(x) <= 3 and pca_dimension(torch.randn(500, 40)) > 30
