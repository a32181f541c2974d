"""The models of the two LiteTransformerSearch spaces, built for real at toy sizes
(a vocabulary of a few hundred tokens) to stay fast: forward pass, adaptive softmax,
gradients and tied weights, Transformer-XL memory, seeding, initialisation and FLOPs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lts_toys import VARIANTS, tiny
from trainfree import get_space
from trainfree.spaces import module_groups
from trainfree.spaces.base import seeded
from trainfree.spaces.lts_config import LTSConfig

SPACES = ("gpt2", "transxl")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Toy tensors: one thread is fastest, and avoids OpenMP spinning on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ real models
@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_log_probs_and_loss(space_name, variant):
    space = get_space(space_name)
    c = tiny(space_name, **VARIANTS[variant])
    model = space.build(c, seed=3).eval()
    counts = space.param_counts(c)
    assert sum(p.numel() for p in model.parameters()) == counts.total
    groups = {k: sum(p.numel() for _, p in v) for k, v in module_groups(model).items()}
    assert groups == {"embedding": counts.embedding, "attention": counts.attention, "ffn": counts.ffn,
                      "head": counts.head, "other": counts.norm + counts.other}  # fmt: skip
    x = space.example_input(c, batch_size=2, seed=1)  # [2, 16]
    labels = space.example_input(c, batch_size=2, seed=2)
    with torch.no_grad():
        hidden = model(x)
        logp = model.log_probs(x)
        nll = model.lm_loss(x, labels)
    assert hidden.shape == (2, 16, 64) and logp.shape == (2, 16, 300) and nll.shape == (2, 16)
    assert torch.isfinite(hidden).all() and torch.isfinite(logp).all() and torch.isfinite(nll).all()
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(nll, -logp.gather(-1, labels[..., None]).squeeze(-1), atol=1e-5, rtol=1e-5)
    # causality: changing tokens from position 10 on leaves positions < 10 untouched
    x2 = x.clone()
    x2[:, 10:] = (x2[:, 10:] + 7) % 300
    with torch.no_grad():
        hidden2 = model(x2)
    torch.testing.assert_close(hidden2[:, :10], hidden[:, :10], atol=1e-6, rtol=0)
    assert not torch.allclose(hidden2[:, 10:], hidden[:, 10:])


@pytest.mark.parametrize("space_name", SPACES)
def test_gradients_reach_every_used_parameter_and_ties_hold(space_name):
    space = get_space(space_name)
    c = tiny(space_name, dropout=0.0)
    model = space.build(c, seed=0)
    head, emb = model.head, model.embedding if space_name == "transxl" else model.embedding.wte
    for i, layer in enumerate(emb.emb_layers):
        assert head.out_layers_weights[i] is layer.weight
    assert head.out_projs["1"] is emb.emb_projs[1] and head.out_projs["0"] is not emb.emb_projs[0]
    ids = torch.arange(0, 300, 300 // 32)[:32].view(2, 16)  # tokens of every cluster
    model.lm_loss(ids, ids.roll(1, dims=1)).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_transxl_memory_continues_the_sequence():
    space = get_space("transxl")
    c = tiny("transxl", mem_len=8)
    model = space.build(c, seed=0).eval()
    x = space.example_input(c, batch_size=2)  # [2, 16]
    with torch.no_grad():
        full = model(x)
        h1, mems = model.forward_with_mems(x[:, :8])
        h2, mems2 = model.forward_with_mems(x[:, 8:], mems)
        loss = model.lm_loss(x[:, 8:], x[:, 8:], mems)
    assert len(mems) == c.n_layer and all(m.shape == (8, 2, 64) for m in mems + mems2)
    assert all(not m.requires_grad for m in mems)
    # with memory covering the first half, the second half sees the same context
    torch.testing.assert_close(torch.cat([h1, h2], dim=1), full, atol=1e-5, rtol=1e-5)
    assert loss.shape == (2, 8) and torch.isfinite(loss).all()
    # memory is capped at mem_len
    short = space.build(tiny("transxl", mem_len=3), seed=0).eval()
    with torch.no_grad():
        _, m1 = short.forward_with_mems(x[:, :8])
        _, m2 = short.forward_with_mems(x[:, 8:], m1)
    assert all(m.shape == (3, 2, 64) for m in m1 + m2)


def test_gpt2_rejects_sequences_longer_than_its_positions():
    space = get_space("gpt2")
    c = tiny("gpt2")
    model = space.build(c)
    with pytest.raises(ValueError, match="tgt_len"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("space_name", SPACES)
def test_builds_are_seeded_and_leave_the_global_rng_alone(space_name):
    space = get_space(space_name)
    c = tiny(space_name)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, other = space.build(c, seed=5), space.build(c, seed=5), space.build(c, seed=6)
    assert torch.equal(torch.rand(3), before)
    sa, sb, so = a.state_dict(), b.state_dict(), other.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    key = "blocks.0.ffn.0.weight" if space_name == "transxl" else "blocks.0.ffn.c_fc.weight"
    assert not torch.equal(sa[key], so[key])


@pytest.mark.parametrize("space_name", SPACES)
def test_initialisation_covers_every_parameter(space_name):
    """Poison freshly allocated storage with NaN: the init must overwrite all of it."""
    space = get_space(space_name)
    c = tiny(space_name, div_val=1, d_embed=32, tie_projs=[False, False, True])
    model = space.build(c, device="meta")
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    model.tie_weights()
    with seeded(0):
        model.reset_parameters()
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    assert not bad, bad


def _medium(space_name: str, **changes) -> LTSConfig:
    """Wide enough for stable init statistics, small vocabulary to stay fast."""
    sizes = dict(n_token=4000, n_layer=4, d_model=256, n_head=[4] * 4, d_head=[64] * 4, d_inner=[1024] * 4)
    return tiny(space_name, **sizes, d_embed=256, div_val=2, cutoffs=[2000, 3000, 4000], **changes)


def test_gpt2_initialisation_statistics():
    c = _medium("gpt2")
    m = get_space("gpt2").build(c, seed=0)
    std = c.weight_init_std
    block = m.blocks[0]
    assert block.attn.c_attn.weight.std().item() == pytest.approx(std, rel=0.02)
    for w in (block.attn.c_proj.weight, block.ffn.c_proj.weight):
        assert w.std().item() == pytest.approx(std / math.sqrt(2 * c.n_layer), rel=0.03)
    assert block.ffn.c_fc.weight.std().item() == pytest.approx(std, rel=0.02)
    assert all(not b.any() for n, b in m.named_parameters() if n.endswith("bias"))
    assert torch.equal(m.ln_f.weight, torch.ones(256)) and torch.equal(block.ln_1.weight, torch.ones(256))
    assert m.embedding.wpe.weight.std().item() == pytest.approx(std, rel=0.05)
    assert m.embedding.wte.emb_layers[0].weight.std().item() == pytest.approx(std, rel=0.02)
    assert m.embedding.wte.emb_projs[0].std().item() == pytest.approx(c.proj_init_std, rel=0.03)
    assert m.head.out_projs["0"].std().item() == pytest.approx(c.proj_init_std, rel=0.03)
    assert not m.head.cluster_bias.any() and not any(b.any() for b in m.head.out_layers_biases)


def test_transxl_initialisation_statistics():
    c = _medium("transxl")
    m = get_space("transxl").build(c, seed=0)
    norms = torch.cat([p for n, p in m.named_parameters() if "norm" in n and n.endswith("weight")])
    assert norms.numel() == 2 * 4 * 256
    assert norms.mean().item() == pytest.approx(1.0, abs=0.003)
    assert norms.std().item() == pytest.approx(c.weight_init_std, rel=0.1)
    attn = m.blocks[0].attn
    for w in (attn.qkv_net.weight, attn.r_net.weight, attn.o_net.weight, m.blocks[0].ffn[0].weight):
        assert w.std().item() == pytest.approx(0.02, rel=0.03)
    biases = torch.cat([p.flatten() for p in (*m.r_w_bias, *m.r_r_bias)])
    assert biases.std().item() == pytest.approx(0.02, rel=0.1)
    assert m.embedding.emb_projs[1].std().item() == pytest.approx(c.proj_init_std, rel=0.05)
    assert not m.blocks[0].ffn[0].bias.any() and not m.blocks[0].attn.layer_norm.bias.any()
    # "uniform" draws U(-0.1, 0.1) wherever "normal" draws N(0, 0.02)
    u = get_space("transxl").build(_medium("transxl", weight_init_type="uniform"), seed=0)
    w = u.blocks[0].attn.qkv_net.weight
    assert w.abs().max().item() <= 0.1 and w.std().item() == pytest.approx(0.2 / math.sqrt(12), rel=0.03)


# ------------------------------------------------------------------ FLOPs
@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_flops_equal_the_counted_matrix_products(space_name, variant):
    """The documented convention, checked against PyTorch's FLOP counter on a forward pass
    producing full log-probabilities (tokens from the head cluster, as the convention assumes)."""
    space = get_space(space_name)
    c = tiny(space_name, **VARIANTS[variant])
    model = space.build(c, seed=0).eval()
    x = torch.randint(0, c.cutoffs[0], (1, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.log_probs(x)
    assert space.flops(c, 16) == counter.get_total_flops()
    assert space.flops(c, 8) < space.flops(c, 16)
