"""The zerolm proxy: spectra, sub-module split, seed invariance, non-random weights, alpha."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from trainfree import get_proxy, get_space
from trainfree.bench.harness import evaluate_balanced
from trainfree.proxies import ProxyContext
from trainfree.proxies.balance import (
    AlphaStrategy,
    Balance,
    choose,
    combine,
    fit_balance,
    heuristic_balance,
    parse_alpha,
)
from trainfree.proxies.spectral import (
    layer_capacities,
    marchenko_pastur_singular_values,
    transformer_matrices,
)
from trainfree.proxies.zerolm import zerolm_components, zerolm_score

TINY_GPT2 = {
    "n_token": 300, "n_layer": 2, "d_model": 64, "n_head": [2, 4], "d_head": [32, 16],
    "d_inner": [128, 256], "d_embed": 64, "div_val": 1, "cutoffs": [300], "tie_projs": [False],
    "tgt_len": 32,
}  # fmt: skip


def tiny_gpt2():
    space = get_space("gpt2")
    base = space.config_to_dict(space.sample(np.random.default_rng(0)))
    base.update(TINY_GPT2)
    return space, space.config_from_dict(base)


@pytest.mark.parametrize("name", ["flexibert", "gpt2", "transxl"])
def test_score_is_invariant_to_the_seed(name):
    lts = {
        "n_layer": [2, 3],
        "d_model": [128, 256],
        "d_inner": [256, 512, 1024],
        "d_embed": [128],
        "div_val": [4],
    }
    small = {"n_layer": [2], "num_ff": [1]} if name == "flexibert" else lts
    space = get_space(name, **small)  # small enough for exact SVDs in a unit test
    cfg = space.sample(np.random.default_rng(1))
    proxy = get_proxy("zerolm")
    comps = [proxy.components(space, cfg, ProxyContext(seed=s)) for s in range(3)]
    exact = [proxy.components(space, cfg, ProxyContext(given_model=space.build(cfg, seed=s))) for s in (0, 1)]
    for key in comps[0]:
        values = np.array([c[key] for c in comps + exact])
        # fresh-init shortcut and exact SVDs agree, and the seed moves log-capacities by < 0.3%
        assert np.ptp(values) <= 3e-3 * abs(values.mean()), (key, values)


def test_marchenko_pastur_reference_matches_real_draws():
    gen = torch.Generator().manual_seed(0)
    for m, n in [(192, 640), (256, 1024), (512, 512)]:
        s = torch.linalg.svdvals(torch.randn(m, n, generator=gen, dtype=torch.float64)).numpy()
        ref = marchenko_pastur_singular_values(m, n)
        assert ref.shape == s.shape and ref[0] >= ref[-1]
        assert abs(ref.sum() / s.sum() - 1) < 5e-3


def test_responds_to_trained_weights():
    """A few optimiser steps on a structured task change the spectra: more than a shape function."""
    space, cfg = tiny_gpt2()
    model = space.build(cfg, seed=0)
    before = zerolm_components(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids = (torch.arange(32).repeat(8, 1) * 7 + torch.arange(8)[:, None]) % 300  # learnable pattern
    for _ in range(40):
        opt.zero_grad()
        loss = model.lm_loss(ids[:, :-1], ids[:, 1:]).mean()
        loss.backward()
        opt.step()
    after = zerolm_components(model)
    for key in before:
        assert abs(after[key] - before[key]) > 0.01 * abs(before[key]), key


def test_low_rank_pretrained_style_weights_score_lower():
    """Same Frobenius norm, low rank (as in many trained matrices): lower nuclear capacity."""
    space, cfg = tiny_gpt2()
    model = space.build(cfg, seed=0)
    reference = get_proxy("zerolm")(space, cfg, ProxyContext(given_model=model))
    with torch.no_grad():
        for mat in transformer_matrices(model):
            w = mat.weight
            u, s, v = torch.linalg.svd(w, full_matrices=False)
            s_low = torch.zeros_like(s)
            s_low[:4] = s.norm() / 2  # rank 4, same Frobenius norm
            w.copy_((u * s_low) @ v)
    # the module is given (not a fresh init): exact SVDs, no i.i.d. shortcut
    low = get_proxy("zerolm")(space, cfg, ProxyContext(given_model=model))
    assert low < reference - 1.0


class _NoMixer(nn.Module):
    """A block whose token mixer has no weights (like a parameter-free Fourier mixer)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.attn = nn.Identity()
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))


def test_module_without_attention_weights():
    model = nn.Module()
    model.blocks = nn.ModuleList([_NoMixer(32) for _ in range(3)])
    comps = zerolm_components(model)
    assert comps["attention_sum"] == 0.0 and comps["attention_layer"] == 0.0
    assert comps["ffn_sum"] > 0 and np.isfinite(zerolm_score(model, alpha=0.7))
    # and a FlexiBERT with only Fourier/cosine mixers still scores (its input projection counts)
    space = get_space("flexibert")
    cfg = space.config_from_benchmark(
        {"hidden_size": 128, "nas_config": {"encoder_layers": [
            {"operation_type": "LT", "operation_parameter": "DFT", "num_operation_heads": 2,
             "feed_forward_dimension": 512, "num_feed_forward": 1}] * 2}}
    )  # fmt: skip
    assert np.isfinite(get_proxy("zerolm")(space, cfg))


def test_named_parameter_fallback_for_foreign_models():
    """A Hugging-Face-style BERT layout is split by parameter names."""
    layer = nn.Module()
    layer.attention = nn.Module()
    layer.attention.self = nn.Module()
    for n in ("query", "key", "value"):
        setattr(layer.attention.self, n, nn.Linear(16, 16))
    layer.intermediate = nn.Module()
    layer.intermediate.dense = nn.Linear(16, 64)
    layer.output = nn.Module()
    layer.output.dense = nn.Linear(64, 16)
    model = nn.Module()
    model.encoder = nn.Module()
    model.encoder.layer = nn.ModuleList([layer])
    model.embeddings = nn.Embedding(100, 16)
    model.pooler = nn.Linear(16, 16)  # a head: left out
    groups = {(m.group, m.name.split(".")[-2]) for m in transformer_matrices(model)}
    assert groups == {("attention", "query"), ("attention", "key"), ("attention", "value"),
                      ("ffn", "dense"), ("embedding", "embeddings")}  # fmt: skip
    caps = layer_capacities(model)
    assert set(caps["attention"]) == {0} and set(caps["ffn"]) == {0} and set(caps["embedding"]) == {0}


def test_embedding_matrices_of_a_built_language_model():
    """The input embedding's tables, projections and positions form the ``embedding`` group;
    the adaptive softmax head (tied or not) is not part of it."""
    space, cfg = tiny_gpt2()
    model = space.build(cfg)
    names = {m.name for m in transformer_matrices(model) if m.group == "embedding"}
    assert names and all(n.startswith("embedding.") for n in names)
    assert any("wpe" in n for n in names) and any("emb_layers" in n for n in names)
    comps = zerolm_components(model)
    wider = space.config_from_dict({**space.config_to_dict(cfg), "d_embed": 128})
    assert zerolm_components(space.build(wider))["embedding"] > comps["embedding"] + 0.1


def test_parse_alpha():
    assert parse_alpha("0.6") == AlphaStrategy("fixed", alpha=0.6)
    assert parse_alpha("heuristic").kind == "heuristic"
    assert parse_alpha("fit:30") == AlphaStrategy("fit", k=30)
    for bad in ("1.5", "fit:2", "fit:x", "maybe"):
        with pytest.raises(ValueError, match="--alpha"):
            parse_alpha(bad)


def _synthetic(n=300, alpha=0.3, seed=0):
    rng = np.random.default_rng(seed)
    comps = {k: rng.normal(size=n) for k in ("attention_sum", "ffn_sum", "attention_layer", "ffn_layer")}
    truth = combine(comps, Balance(alpha, "layer")) + rng.normal(scale=0.05, size=n)
    return comps, truth


def test_fit_recovers_the_generating_balance():
    comps, truth = _synthetic()
    fitted = fit_balance(comps, truth)
    assert fitted.aggregate == "layer" and abs(fitted.alpha - 0.3) < 0.08
    lower = fit_balance(comps, -truth, higher_is_better=False)
    assert lower == fitted


def test_fit_recovers_the_embedding_weight_and_ignores_a_constant_embedding():
    comps, _ = _synthetic()
    rng = np.random.default_rng(1)
    comps["embedding"] = rng.normal(size=len(comps["ffn_sum"]))
    truth = combine(comps, Balance(0.3, "layer", beta=0.5)) + rng.normal(
        scale=0.05, size=len(comps["embedding"])
    )
    fitted = fit_balance(comps, truth)
    assert fitted.aggregate == "layer" and abs(fitted.alpha - 0.3) < 0.08 and abs(fitted.beta - 0.5) < 0.1
    comps["embedding"] = 3.0 + 1e-3 * rng.normal(size=len(truth))  # every embedding alike, up to seed noise
    assert fit_balance(comps, truth).beta == 0.0
    assert heuristic_balance(comps).beta == 0.0  # the label-free rule never weights it


def test_vectorised_kendall_tau_is_scipys_tau_b():
    from scipy.stats import kendalltau

    from trainfree.proxies.balance import kendall_taus

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(9, 40)).astype(float)  # many ties
    y = rng.integers(0, 6, size=40).astype(float)
    expected = [kendalltau(row, y).statistic for row in scores]
    np.testing.assert_allclose(kendall_taus(scores, y, chunk=4), expected, rtol=1e-12)
    assert np.isnan(kendall_taus(np.ones((1, 40)), y)[0])


def test_agreement_picks_the_aggregation_where_submodules_agree():
    rng = np.random.default_rng(0)
    size = rng.normal(size=200)
    comps = {
        "attention_sum": size + rng.normal(scale=1.0, size=200), "ffn_sum": rng.normal(size=200),
        "attention_layer": size, "ffn_layer": 3 * size + rng.normal(scale=0.3, size=200),
    }  # fmt: skip
    chosen = choose("agreement", comps)
    assert chosen.aggregate == "layer"
    # equal spread: the larger-spread FFN term gets the smaller weight
    assert chosen.alpha == pytest.approx(
        np.std(comps["ffn_layer"]) / (1 + np.std(comps["ffn_layer"])), rel=0.1
    )


def test_fit_is_evaluated_only_on_held_out_architectures():
    """Labels of the fitting sample are perfect, the rest pure noise: held-out rho must be ~0."""
    comps, truth = _synthetic(n=400)
    rng = np.random.default_rng(5)
    noisy = truth.copy()
    noisy[:] = rng.normal(size=len(truth))
    _, result = evaluate_balanced(comps, noisy, True, AlphaStrategy("fit", k=50), repeats=5)
    assert abs(result["spearman"]) < 0.15 and result["n"] == 350
    _, honest = evaluate_balanced(comps, truth, True, AlphaStrategy("fit", k=50), repeats=5)
    assert honest["spearman"] > 0.95 and honest["spearman_std"] < 0.05
    assert honest["protocol"]["evaluate_on"] == 350 and len(honest["alphas"]) == 5


def test_cli_alpha_fit_json(data_dir, tmp_path):
    from trainfree.cli import app

    out = tmp_path / "z.json"
    res = CliRunner().invoke(
        app,
        ["bench", "--space", "gpt2", "--data", str(data_dir / "lts" / "random_GPT2_wt103"),
         "--proxy", "param_mix", "--alpha", "fit:50", "--repeats", "4", "--json", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    r = payload["proxies"]["param_mix"]
    for key in (
        "spearman",
        "kendall",
        "spearman_std",
        "kendall_std",
        "alpha",
        "alphas",
        "beta",
        "betas",
        "protocol",
    ):
        assert key in r
    assert r["n"] == 150 and payload["alpha_strategy"] == "fit:50"
    assert r["spearman"] > 0.95
    res = CliRunner().invoke(app, ["bench", "--space", "gpt2", "--proxy", "zerolm", "--alpha", "fit:1"])
    assert res.exit_code == 2 and "fit:K" in res.output


def test_svdvals_of_elongated_matrices_match_lapack_and_threads_are_restored():
    from trainfree.proxies.spectral import singular_values, svdvals

    gen = torch.Generator().manual_seed(0)
    for w in (
        torch.randn(3000, 40, generator=gen),  # tall: Gram path
        torch.randn(2, 40, 3000, generator=gen),  # batched, wide: Gram path
        torch.randn(3000, 4, generator=gen) @ torch.randn(4, 40, generator=gen),  # rank 4
        torch.randn(50, 60, generator=gen),  # square-ish: LAPACK path
    ):
        ours, ref = svdvals(w), torch.linalg.svdvals(w)
        assert ours.shape == ref.shape and ours.dtype == torch.float32
        torch.testing.assert_close(ours, ref, atol=1e-4 * float(ref.max()), rtol=1e-4)
    threads = torch.get_num_threads()
    space, cfg = tiny_gpt2()
    before = transformer_matrices(space.build(cfg))
    singular_values(before)
    assert torch.get_num_threads() == threads


def test_label_free_default_is_the_space_prior_and_needs_no_population():
    flex, gpt2 = get_space("flexibert"), get_space("gpt2")
    assert choose("heuristic", space=gpt2) == Balance(0.5, "sum")  # a proxy without a transferred one
    assert choose("heuristic", space=flex) == Balance(0.5, "layer")
    assert "NAS-Bench-BERT" in choose("heuristic", space=flex).reason
    assert choose("0.3", space=flex) == Balance(0.3, "layer")
    assert choose("heuristic") == Balance(0.5, "sum")  # no prior: the safe default
    assert heuristic_balance({"x": np.zeros(3)}, space=flex) == Balance(0.5, "layer")  # former API


def test_agreement_on_a_small_or_uniform_population_warns_and_uses_the_safe_default():
    comps, _ = _synthetic(n=10)
    with pytest.warns(RuntimeWarning, match="fewer than 20"):
        assert choose("agreement", comps) == Balance(0.5, "sum")
    comps, _ = _synthetic(n=40)
    comps["ffn_layer"] = np.ones(40)
    with pytest.warns(RuntimeWarning, match="constant component"):
        assert choose("agreement", comps) == Balance(0.5, "sum")
    comps, _ = _synthetic(n=40)
    comps["ffn_sum"][[3, 7]] = np.nan
    with pytest.warns(RuntimeWarning, match="2 architecture.*arch3, arch7"):
        choose("agreement", comps, ids=[f"arch{i}" for i in range(40)])
    with pytest.raises(ValueError, match="needs labels"):
        choose("fit:10", comps)
