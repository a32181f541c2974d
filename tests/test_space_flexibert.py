"""FlexiBERT spaces: published counts, meta builds, the forward of every operation, init,
config validation and the genome operators."""

from __future__ import annotations

import csv
import itertools
import json
import math
from functools import cache

import numpy as np
import pytest
import scipy.fft
import torch
from torch import nn

from trainfree.data import data_root
from trainfree.errors import ConfigError
from trainfree.spaces import get_space, module_groups
from trainfree.spaces.flexibert_config import FlexiBertConfig, FlexiBertLayer
from trainfree.spaces.flexibert_model import ConvSelfAttention, FlexiBertModel, dct_2d


@cache
def _bench() -> tuple[list[dict], dict[int, int]]:
    folder = data_root() / "nas-bench-bert"
    if not (folder / "BERT_benchmark.json").is_file():
        pytest.skip(
            f"NAS-Bench-BERT data not found in {folder} (set TRAINFREE_DATA to the benchmarks folder)"
        )
    entries = json.loads((folder / "BERT_benchmark.json").read_text())
    with open(folder / "BERT_results_activation.csv", newline="") as f:
        published = {int(row["ID"]): int(row["Number of Parameters"]) for row in csv.DictReader(f)}
    return entries, published


def _layer(op: str, param: str | int, heads: int, ffn: int = 64, n: int = 2) -> FlexiBertLayer:
    return FlexiBertLayer(op, param, heads, ffn, n)


# Every operation type, both head counts, with and without the embedding projection.
ALL_OPS_128 = FlexiBertConfig(
    128,
    (
        _layer("SA", "SDP", 4),
        _layer("SA", "WMA", 2, n=1),
        _layer("LT", "DFT", 4, n=3),
        _layer("LT", "DCT", 2),
        _layer("DSC", 5, 2),
        _layer("DSC", 9, 4),
    ),
)
ALL_OPS_256 = FlexiBertConfig(
    256, (_layer("DSC", 9, 2), _layer("LT", "DCT", 4), _layer("SA", "WMA", 4), _layer("LT", "DFT", 2))
)


# ---------------------------------------------------------------------- counts
def test_published_totals_match_all_500_entries():
    entries, published = _bench()
    space = get_space("flexibert-published")
    mismatches = []
    for entry in entries:
        total = space.param_counts(space.config_from_benchmark(entry)).total
        if total != published[entry["id"]]:
            mismatches.append((entry["id"], total, published[entry["id"]]))
    assert len(entries) == 500
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    assert space.param_counts(space.config_from_benchmark(entries[0])).total == 13_330_176  # spec example


@pytest.mark.parametrize("name", ["flexibert", "flexibert-published"])
def test_meta_build_matches_analytic_counts_for_all_entries(name):
    entries, _ = _bench()
    space = get_space(name)
    for entry in entries:
        config = space.config_from_benchmark(entry)
        counts = space.param_counts(config)
        model = space.build(config, device="meta")
        groups = {k: sum(p.numel() for _, p in v) for k, v in module_groups(model).items()}
        built = (sum(p.numel() for p in model.parameters()), groups["embedding"], groups["attention"])
        assert built == (counts.total, counts.embedding, counts.attention), entry["id"]
        assert (groups["ffn"], groups["other"], groups["head"]) == (counts.ffn, counts.norm, 0), entry["id"]
        assert counts.decoder == counts.total - counts.embedding and counts.head == counts.other == 0


def test_trained_dims_follow_the_config():
    space, published = get_space("flexibert"), get_space("flexibert-published")
    small = FlexiBertConfig(128, (_layer("SA", "SDP", 2, ffn=512, n=1), _layer("LT", "DFT", 2, ffn=512, n=1)))
    model = space.build(small, device="meta")
    assert model.embedding.project is None  # H == E == 128: no projection
    assert model.blocks[0].ffn.dense_in.out_features == 512
    assert model.blocks[1].attn_norm is None  # LT has no self-output LayerNorm
    wide = published.build(small, device="meta")
    assert wide.embedding.project.out_features == 256 and wide.blocks[0].ffn.dense_in.out_features == 1024
    assert space.param_counts(small).total < published.param_counts(small).total


def test_flops_equal_the_counted_matrix_products():
    from torch.utils.flop_counter import FlopCounterMode

    space = get_space("flexibert")
    for config in (ALL_OPS_128, ALL_OPS_256):
        model = space.build(config).eval()
        t = 12
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(space.example_input(config, batch_size=1, seq_len=t))
        # the FFTs are not matrix products for the counter: add their documented equivalent
        h = config.hidden_size
        transforms = sum(
            2 * k * (t * (h // k) ** 2 + t * t * (h // k)) * (2 if p == "DFT" else 1)
            for op, p, k in ((x.operation_type, x.operation_parameter, x.num_heads) for x in config.layers)
            if op == "LT"
        )
        assert counter.get_total_flops() + transforms == space.flops(config, t)
    with pytest.raises(ConfigError, match="seq_len"):
        space.flops(ALL_OPS_128, 513)


# --------------------------------------------------------------------- forward
@pytest.mark.parametrize("config", [ALL_OPS_128, ALL_OPS_256], ids=["H128", "H256"])
def test_forward_every_operation(config):
    space = get_space("flexibert")
    model = space.build(config, seed=0).eval()
    ids = space.example_input(config, batch_size=2, seq_len=10)
    with torch.no_grad():
        last, states = model(ids, token_type_ids=torch.ones_like(ids), output_hidden_states=True)
        again = model(ids, token_type_ids=torch.ones_like(ids))
    assert last.shape == (2, 10, config.hidden_size)
    assert torch.isfinite(last).all() and torch.equal(last, again)
    assert len(states) == config.n_layer + 1 and states[-1] is last
    assert all(s.shape == last.shape for s in states)
    # bare LayerNorm output: zero mean, unit variance per position
    assert last.mean(-1).abs().max() < 1e-4 and (last.var(-1, unbiased=False) - 1).abs().max() < 1e-2


def test_dct_and_dft_match_reference_transforms():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float64)
    expected = scipy.fft.dct(scipy.fft.dct(x, type=2, axis=-1), type=2, axis=-2)  # factor 2 included
    np.testing.assert_allclose(dct_2d(torch.from_numpy(x)).numpy(), expected, rtol=1e-9, atol=1e-9)
    # LT-DFT: the real part of the 2-D DFT of each head over (sequence, head dim)
    config = FlexiBertConfig(128, (_layer("LT", "DFT", 4),))
    attn = get_space("flexibert").build(config).blocks[0].attn
    h = torch.randn(2, 5, 128)
    u = attn.input(h).view(2, 5, 4, 32).permute(0, 2, 1, 3).detach().numpy()
    want = np.fft.fft2(u).real.transpose(0, 2, 1, 3).reshape(2, 5, 128)
    np.testing.assert_allclose(attn(h).detach().numpy(), want, rtol=1e-4, atol=1e-4)


def test_dynamic_convolution_matches_the_original_unfold_formulation():
    """The original builds the K-position windows with nn.functional.unfold on [B, a, T, 1]."""
    config = FlexiBertConfig(128, (_layer("DSC", 5, 4),))
    attn: ConvSelfAttention = get_space("flexibert").build(config).blocks[0].attn.eval()
    x = torch.randn(2, 9, 128)
    b, t, c, s, k = 2, 9, attn.n_head, attn.head_size, attn.kernel_size
    with torch.no_grad():
        q = attn.query(x)
        key_conv = attn.key_conv_attn_layer(x.transpose(1, 2)).transpose(1, 2)
        kernel = torch.softmax(attn.conv_kernel_layer(key_conv * q).reshape(-1, k, 1), dim=1)
        col = attn.conv_out_layer(x).transpose(1, 2).contiguous().unsqueeze(-1)
        col = nn.functional.unfold(col, kernel_size=[k, 1], padding=[(k - 1) // 2, 0])
        col = col.transpose(1, 2).reshape(b, t, c * s, k).reshape(-1, s, k)
        conv = torch.matmul(col, kernel).reshape(b, t, c, s)
        qh, kh, vh = (m(x).view(b, t, c, s).transpose(1, 2) for m in (attn.query, attn.key, attn.value))
        probs = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(s), dim=-1)
        ctx = (probs @ vh).transpose(1, 2)
        want = attn.output(torch.cat([ctx, conv], dim=2).reshape(b, t, 2 * c * s))
        torch.testing.assert_close(attn(x), want)


# ------------------------------------------------------------------------ init
def test_build_is_seeded_and_leaves_global_rng_alone():
    space = get_space("flexibert")
    config = FlexiBertConfig(128, (_layer("DSC", 5, 2), _layer("SA", "WMA", 2)))
    state = torch.random.get_rng_state()
    a, b, other = space.build(config, seed=0), space.build(config, seed=0), space.build(config, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    pa, pb, po = (dict(m.named_parameters()) for m in (a, b, other))
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert not torch.equal(pa["blocks.0.attn.query.weight"], po["blocks.0.attn.query.weight"])
    assert not torch.equal(pa["embedding.word_embeddings.weight"], po["embedding.word_embeddings.weight"])


def test_seed_zero_reproduces_the_original_random_stream():
    """Reference values printed by the original module tree (modeling_electra.py's classes on
    transformers 4.30.2, torch.manual_seed(0) then ElectraModel(config), as the notebook did)
    for entry 1: LT-DFT/4, SA-SDP/2, DSC-9/4, DSC-5/2, published dims."""
    entries, _ = _bench()
    space = get_space("flexibert-published")
    model = space.build(space.config_from_benchmark(entries[1]), seed=0).eval()
    close = dict(rtol=1e-5, atol=1e-7)
    emb = model.embedding
    torch.testing.assert_close(
        emb.word_embeddings.weight[1, :3], torch.tensor([-0.02536017, -0.02363728, 0.01475901]), **close
    )
    torch.testing.assert_close(
        emb.project.weight[0, :3], torch.tensor([-0.02301952, -0.04547285, -0.00260288]), **close
    )
    torch.testing.assert_close(
        model.blocks[3].ffn.dense_out.weight[0, :3],
        torch.tensor([0.00581864, 0.02089270, -0.00136655]),
        **close,
    )
    torch.testing.assert_close(
        model.blocks[2].attn.key_conv_attn_layer.depthwise.weight[0, 0, :3],
        torch.tensor([-0.01774664, 0.04205755, 0.00411368]),
        **close,
    )
    ids = torch.arange(1, 17).view(2, 8) * 101
    with torch.no_grad():
        out = model(ids)
    torch.testing.assert_close(
        out[0, 0, :4], torch.tensor([-0.19506955, -0.15256079, 1.63836110, -0.39005032]), rtol=1e-4, atol=1e-4
    )


def test_init_statistics():
    model = get_space("flexibert-published").build(ALL_OPS_128, seed=3)
    emb = model.embedding
    assert torch.count_nonzero(emb.word_embeddings.weight[0]) == 0  # padding row
    assert emb.word_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.02)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if module.weight.numel() >= 10_000:
                assert module.weight.std().item() == pytest.approx(0.02, rel=0.1)
                assert abs(module.weight.mean().item()) < 2e-3
            assert module.bias is None or torch.count_nonzero(module.bias) == 0
        elif isinstance(module, nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0
        elif isinstance(module, nn.Conv1d):
            assert module.weight.std().item() == pytest.approx(0.02, rel=0.2)
    dsc = model.blocks[4].attn.key_conv_attn_layer
    assert torch.count_nonzero(dsc.bias) == 0
    assert isinstance(model, FlexiBertModel) and model.training  # as built by the notebook


# ---------------------------------------------------------------------- configs
def _good() -> dict:
    return get_space("flexibert").config_to_dict(ALL_OPS_128)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("hidden_size"), "hidden_size"),
        (lambda d: d.update(hidden_size=0), "hidden_size"),
        (lambda d: d.update(layers=[]), "layers"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["layers"][2].update(num_heads=3), "layers[2].num_heads"),
        (lambda d: d["layers"][0].update(operation_type="RNN"), "layers[0].operation_type"),
        (lambda d: d["layers"][0].update(operation_parameter="DCT"), "layers[0].operation_parameter"),
        (lambda d: d["layers"][4].update(operation_parameter=4), "layers[4].operation_parameter"),
        (lambda d: d["layers"][4].update(num_heads=1), "layers[4].num_heads"),
        (lambda d: d["layers"][1].update(num_ff=0), "layers[1].num_ff"),
        (lambda d: d["layers"][1].update(ffn_dim=64.5), "layers[1].ffn_dim"),
        (lambda d: d["layers"][1].pop("ffn_dim"), "layers[1].ffn_dim"),
        (lambda d: d["layers"][3].update(num_head=2), "layers[3].num_head"),
        (lambda d: d.update(hidden_dropout=1.5), "hidden_dropout"),
        (lambda d: d.update(pad_token_id=30522), "pad_token_id"),
    ],
)
def test_config_errors_name_the_field(mutate, field):
    data = _good()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        get_space("flexibert").config_from_dict(data)
    assert err.value.field == field and f"'{field}'" in str(err.value)


def test_published_space_checks_heads_against_its_dims():
    data = _good()
    data["hidden_size"] = 96
    data["layers"] = [{**data["layers"][0], "num_heads": 3}]
    assert get_space("flexibert").config_from_dict(data).hidden_size == 96
    with pytest.raises(ConfigError, match=r"layers\[0\].num_heads.*256"):
        get_space("flexibert-published").config_from_dict(data)


def test_benchmark_entry_errors_name_the_entry():
    entries, _ = _bench()
    space = get_space("flexibert")
    entry = json.loads(json.dumps(entries[17]))
    entry["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][1]["num_operation_heads"] = (
        "two"
    )
    with pytest.raises(
        ConfigError, match=r"^entry 17: field 'nas_config.encoder_layers\[1\].num_operation_heads'"
    ):
        space.config_from_benchmark(entry)
    del entry["hparams"]["model_hparam_overrides"]["hidden_size"]
    with pytest.raises(ConfigError, match="entry 17: field 'hidden_size'"):
        space.config_from_benchmark(entry)


def test_benchmark_entry_conversion_and_json_round_trip():
    entries, _ = _bench()
    space = get_space("flexibert")
    first = space.config_from_benchmark(entries[0])
    assert first.hidden_size == 256 and first.n_layer == 4
    assert first.layers[0] == FlexiBertLayer("SA", "WMA", 4, 1024, 3)
    assert [layer.operation for layer in first.layers] == ["SA-WMA", "LT-DCT", "SA-SDP", "SA-SDP"]
    same = space.config_from_benchmark(entries[0]["hparams"]["model_hparam_overrides"])
    assert same == first and hash(same) == hash(first)
    for entry in entries[:60]:
        config = space.config_from_benchmark(entry)
        assert space.config_from_dict(space.config_to_dict(config)) == config
        assert space.config_from_json(space.config_to_json(config)) == config
    custom = FlexiBertConfig(
        192, ALL_OPS_128.layers[:2], max_position=64, hidden_dropout=0.0, layer_norm_eps=1e-5
    )
    assert space.config_from_json(space.config_to_json(custom)) == custom


# ---------------------------------------------------------------------- genome
def test_genome_operators_stay_in_the_value_sets():
    for name in ("flexibert", "flexibert-published"):
        space = get_space(name)
        assert space.n_genes == 2 + 4 * 4
        rng = np.random.default_rng(0)
        configs = [space.sample(rng) for _ in range(40)]
        for a, b in itertools.pairwise(configs):
            for child in (space.mutate(a, rng), space.crossover(a, b, rng)):
                assert space.config_from_dict(space.config_to_dict(child)) == child
                assert child.hidden_size in (128, 256) and child.n_layer in (2, 4)
                for layer in child.layers:
                    assert layer.operation in space.values["operation"]
                    assert (layer.num_heads, layer.ffn_dim, layer.num_ff) in {
                        (k, f, n) for k in (2, 4) for f in (512, 1024) for n in (1, 3)
                    }
                assert space.decode(space.encode(child)) == child
            assert space.mutate(a, rng) != a
        assert {layer.operation for c in configs for layer in c.layers} == set(space.values["operation"])


def test_unused_slots_repeat_the_last_layer():
    space = get_space("flexibert")
    config = FlexiBertConfig(256, (_layer("SA", "SDP", 2, 512, 1), _layer("DSC", 9, 4, 1024, 3)))
    genes = space.to_genes(config)
    assert genes[:2] == [256, 2] and genes[2:6] == ["SA-SDP", 2, 512, 1]
    assert genes[6:10] == genes[10:14] == genes[14:18] == ["DSC-9", 4, 1024, 3]
    deeper = space.from_genes([256, 4, *genes[2:]])
    assert deeper.layers[:2] == config.layers and deeper.layers[3] == config.layers[1]


def test_value_sets_are_checked_and_overridable():
    space = get_space("flexibert", n_layer=[1, 3], operation=["SA-WMA", "DSC-7"], num_heads=[2])
    config = space.sample(np.random.default_rng(1))
    assert config.n_layer in (1, 3) and {layer.operation for layer in config.layers} <= {"SA-WMA", "DSC-7"}
    assert space.build(config, device="meta") is not None
    with pytest.raises(ConfigError, match="operation"):
        get_space("flexibert", operation=["SA-XYZ"])
    with pytest.raises(ConfigError, match="num_heads"):  # 3 does not divide 128 or 256
        get_space("flexibert", num_heads=[2, 3])
    with pytest.raises(ConfigError, match="num_heads"):  # DSC needs an even head count
        get_space("flexibert", hidden_size=[120], num_heads=[3], operation=["DSC-5"])
