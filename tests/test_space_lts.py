"""The two LiteTransformerSearch spaces (GPT-2, Transformer-XL): configs, counts and genome.

Counts are checked against every published number (636 architectures x 5 buckets); the
archai and JSON readers name the field of a bad config; the genome round-trips. The built
models themselves are tested in test_space_lts_models.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from lts_toys import tiny
from trainfree import get_space
from trainfree.data import data_root
from trainfree.errors import ConfigError
from trainfree.spaces import module_groups
from trainfree.spaces.lts_config import clean_cutoffs, config_from_archai

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BUCKETS = {
    "AdaEmb": "embedding",
    "Attn": "attention",
    "FFN": "ffn",
    "nonembedding": "decoder",
    "total": "total",
}
SPACES = ("gpt2", "transxl")


def _space_of(folder: str) -> str:
    return "gpt2" if "GPT2" in folder else "transxl"


@pytest.fixture(scope="module")
def lts_root() -> Path:
    root = data_root() / "lts"
    if not root.is_dir():
        pytest.skip(f"LTS benchmark data not found at {root} (set TRAINFREE_DATA to the benchmarks folder)")
    return root


@pytest.fixture(scope="module")
def benchmark_models(lts_root):
    """(folder, id, raw yaml, published counts) for every LTS architecture."""
    out = []
    for folder in sorted(p for p in lts_root.iterdir() if p.is_dir()):
        summary = yaml.load((folder / "params_summary.yaml").read_text(), Loader=LOADER)
        files = [
            (f"{f.parent.parent.name}_{f.parent.name}", f)
            for f in folder.glob("config_*/j*/model_config.yaml")
        ]
        files += [(f.parent.name, f) for f in folder.glob("M*/model_config.yaml")]
        for eid, f in sorted(files):
            out.append((folder.name, eid, yaml.load(f.read_text(), Loader=LOADER), summary[eid]))
    return out


@pytest.fixture(scope="module")
def benchmark_configs(benchmark_models):
    """(space, folder, id, config, published counts) for every LTS architecture."""
    out = []
    for folder, eid, raw, published in benchmark_models:
        space = get_space(_space_of(folder))
        out.append((space, folder, eid, space.config_from_benchmark(raw, f"{folder}/{eid}"), published))
    return out


# ------------------------------------------------------------------ published counts
def test_analytic_counts_equal_every_published_count(benchmark_configs):
    assert len(benchmark_configs) == 636
    per_folder = {}
    for _, folder, *_ in benchmark_configs:
        per_folder[folder] = per_folder.get(folder, 0) + 1
    assert per_folder["random_GPT2_wt103"] == 200 and per_folder["random_TransXL_wt103"] == 200
    mismatches = []
    for space, folder, eid, config, published in benchmark_configs:
        counts = space.param_counts(config)
        for key, attr in BUCKETS.items():
            if int(published[key]) != getattr(counts, attr):
                mismatches.append(
                    f"{folder}/{eid} {key}: published {int(published[key])}, ours {getattr(counts, attr)}"
                )
        parts = counts.embedding + counts.attention + counts.ffn + counts.norm + counts.head + counts.other
        if parts != counts.total:
            mismatches.append(f"{folder}/{eid}: buckets sum to {parts}, total {counts.total}")
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


def test_meta_builds_match_analytic_counts_and_groups(benchmark_configs):
    problems = []
    for space, folder, eid, config, _ in benchmark_configs:
        model = space.build(config, device="meta")
        counts = space.param_counts(config)
        total = sum(p.numel() for p in model.parameters())
        groups = {k: sum(p.numel() for _, p in v) for k, v in module_groups(model).items()}
        expected = {
            "embedding": counts.embedding, "attention": counts.attention, "ffn": counts.ffn,
            "head": counts.head, "other": counts.norm + counts.other,
        }  # fmt: skip
        if total != counts.total or groups != expected:
            problems.append(f"{folder}/{eid}: built {total} {groups}, analytic {counts}")
    assert not problems, f"{len(problems)} problems, first: {problems[:3]}"


def test_benchmark_configs_round_trip_through_json(benchmark_configs):
    for space, folder, eid, config, _ in benchmark_configs:
        again = space.config_from_json(space.config_to_json(config))
        assert again == config and hash(again) == hash(config), f"{folder}/{eid}"


def test_benchmark_resolution_details(benchmark_configs):
    by_id = {(folder, eid): c for _, folder, eid, c, _ in benchmark_configs}
    c = by_id[("random_GPT2_wt103", "config_0_j0")]
    assert c.cutoffs == (19997, 39997, 50264) and c.tie_projs == (False, True, True)
    assert c.d_embed == 256 and c.n_head == (2, 4, 4, 8, 8) and c.d_head == (64, 32, 32, 16, 16)
    assert c.mem_len == 0  # ignored by GPT-2, kept neutral
    c = by_id[("pareto_GPT2_lm1b_arm", "M1")]
    assert c.cutoffs == (50264,) and c.tie_projs == (False,) and c.d_embed == c.d_model == 512
    c = by_id[("pareto_GPT2_lm1b_titanxp", "M18")]
    assert c.n_token == 50257 and c.cutoffs == (19997, 39997, 50257) and c.tie_projs == (False, True, True)
    c = by_id[("pareto_TransXL_lm1b_arm", "M1")]
    assert c.cutoffs == (59997, 99997, 267735) and c.mem_len == 32 and c.tgt_len == 32
    c = by_id[("random_TransXL_wt103", "config_0_j0")]
    assert c.cutoffs == (19997, 39997, 199997, 267736) and c.mem_len == 192


@pytest.mark.parametrize(
    ("raw", "n_token", "clean"),
    [
        ([19997, 39997, 199997, 50264], 50264, (19997, 39997, 50264)),
        ([59997, 99997, 639997, 50264], 50264, (50264,)),
        ([19997, 39997, 199997], 50257, (19997, 39997, 50257)),
        ([19997, 39997, 199997, 267736], 267736, (19997, 39997, 199997, 267736)),
        ([59997, 99997, 639997, 267735], 267735, (59997, 99997, 267735)),
        ([], 1000, (1000,)),
    ],
)
def test_cutoff_cleaning(raw, n_token, clean):
    assert clean_cutoffs(raw, n_token) == clean


# ------------------------------------------------------------------ archai configs
def _yaml(space_name: str, lts_root: Path) -> dict:
    folder = "random_GPT2_wt103" if space_name == "gpt2" else "random_TransXL_wt103"
    return yaml.load((lts_root / folder / "config_0" / "j0" / "model_config.yaml").read_text(), Loader=LOADER)


@pytest.mark.parametrize("space_name", SPACES)
def test_homogeneous_scalar_forms_and_other_vocabularies(space_name, lts_root):
    space = get_space(space_name)
    raw = _yaml(space_name, lts_root)
    raw.update(n_head=4, d_inner=1024, d_head=-1, d_embed=-1, n_token=793471, div_val=2)
    raw.update(cutoffs=[59997, 99997, 639997], tie_projs=[0, 1, 1, 1, 1], brand_new_key="ignored")
    c = space.config_from_benchmark(raw, "x.yaml")
    L, d = c.n_layer, c.d_model
    assert c.n_head == (4,) * L and c.d_inner == (1024,) * L and c.d_head == (d // 4,) * L
    assert c.d_embed == d and c.cutoffs == (59997, 99997, 639997, 793471)
    assert c.tie_projs == (False, True, True, True)
    assert space.vocab_size(c) == 793471 and space.max_seq_len(c) == 192
    model = space.build(c, device="meta")
    assert sum(p.numel() for p in model.parameters()) == space.param_counts(c).total
    # empty tie_projs: archai's default, [not adaptive] + [True] * (K - 1)
    raw.update(tie_projs=[])
    assert space.config_from_benchmark(raw).tie_projs == (False, True, True, True)


def test_gpt2_pads_short_per_layer_lists_like_archai(lts_root):
    raw = _yaml("gpt2", lts_root)  # n_layer 5
    raw.update(n_head=[2, 4], d_inner=[512, 640, 768, 896, 1024, 2048])
    c = get_space("gpt2").config_from_benchmark(raw)
    assert c.n_head == (2, 4, 2, 2, 2) and c.d_inner == (512, 640, 768, 896, 1024)


def _raises(field: str, fn, *args, where: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    assert info.value.field == field, str(info.value)
    assert f"'{field}'" in str(info.value)
    if where:
        assert str(info.value).startswith(where)
    return info.value


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n_head": [2, 4]}, "n_head"),  # Transformer-XL asserts one entry per layer
        ({"d_model": 100, "n_head": [4, 8, 4, 4, 4]}, "n_head[1]"),  # 100 % 8 != 0, d_head is -1
        ({"cutoffs": [39997, 19997, 199997, 267736]}, "cutoffs"),
        ({"d_model": "wide"}, "d_model"),
        ({"n_layer": 0}, "n_layer"),
        ({"d_embed": 0}, "d_embed"),
        ({"div_val": 0}, "div_val"),
        ({"tie_projs": [False, True]}, "tie_projs"),
        ({"tie_projs": ["yes", True, True, True]}, "tie_projs[0]"),
        ({"tie_weight": False}, "tie_weight"),
        ({"sample_softmax": 1000}, "sample_softmax"),
        ({"pre_lnorm": True}, "pre_lnorm"),
        ({"dropout": 1.5}, "dropout"),
        ({"weight_init_type": "xavier"}, "weight_init_type"),
        ({"d_inner": [512, 512, -3, 512, 512]}, "d_inner[2]"),
    ],
)
def test_bad_archai_configs_name_the_field(change, field, lts_root):
    raw = _yaml("transxl", lts_root)  # n_layer 5
    raw.update(change)
    _raises(field, get_space("transxl").config_from_benchmark, raw, "some/model_config.yaml",
            where="some/model_config.yaml")  # fmt: skip


def test_bad_archai_config_through_module_function(lts_root):
    raw = _yaml("gpt2", lts_root)
    del raw["n_token"]
    err = _raises("n_token", config_from_archai, raw, "f.yaml", where="f.yaml")
    assert "missing" in str(err)
    _raises("<root>", config_from_archai, ["not", "a", "mapping"])


@pytest.mark.parametrize("space_name", SPACES)
def test_bad_json_configs_name_field_value_and_expectation(space_name):
    space = get_space(space_name)
    good = space.config_to_dict(tiny(space_name))
    cases = [
        ({"n_token": None}, "n_token"),
        ({"d_model": -3}, "d_model"),
        ({"n_head": [2, 4]}, "n_head"),
        ({"d_inner": [100, 0, 90]}, "d_inner[1]"),
        ({"cutoffs": [200, 100, 300]}, "cutoffs"),
        ({"cutoffs": [100, 200]}, "cutoffs"),  # must end with n_token
        ({"tie_projs": [False, True]}, "tie_projs"),
        ({"tie_projs": [0, 1, 1]}, "tie_projs[0]"),  # our JSON form wants real booleans
        ({"div_val": 64}, "div_val"),  # 32 // 64**2 == 0: a cluster would have width 0
        ({"dropatt": -0.1}, "dropatt"),
        ({"proj_init_std": 0}, "proj_init_std"),
        ({"mem_len": -1}, "mem_len"),
        ({"d_modle": 64}, "d_modle"),  # unknown field (typo)
    ]
    for change, field in cases:
        data = dict(good, **change)
        err = _raises(field, space.config_from_dict, data)
        assert repr(change[field.split("[")[0]]) in str(err) or field.endswith("]")
    data = dict(good)
    del data["tgt_len"]
    _raises("tgt_len", space.config_from_dict, data)
    _raises("<root>", space.config_from_json, "[1, 2]")


def test_gpt2_specific_rules():
    space = get_space("gpt2")
    good = space.config_to_dict(tiny("gpt2"))
    _raises("n_head[0]", space.config_from_dict, dict(good, n_head=[3, 4, 8]))
    _raises("d_head[1]", space.config_from_dict, dict(good, d_head=[32, 8, 8]))
    _raises("mem_len", space.config_from_dict, dict(good, mem_len=192))
    # Transformer-XL allows an explicit head size (H_i != d_model)
    txl = get_space("transxl")
    c = txl.config_from_dict(dict(txl.config_to_dict(tiny("transxl")), n_head=[3, 4, 8], d_head=[10, 16, 8]))
    model = txl.build(c, device="meta")
    assert sum(p.numel() for p in model.parameters()) == txl.param_counts(c).total


# ------------------------------------------------------------------ genome
@pytest.mark.parametrize("space_name", SPACES)
def test_genome_operators_give_valid_configs(space_name):
    space = get_space(space_name)
    genes = space.genes()
    names = [g.name for g in genes]
    assert names[:6] == ["n_layer", "d_model", "d_embed", "div_val", "layers[0].d_inner", "layers[0].n_head"]
    assert "layers[15].n_head" in names and "layers[16].n_head" not in names
    rng = np.random.default_rng(0)
    lower, upper = space.bounds()
    for _ in range(25):
        a, b = space.sample(rng), space.sample(rng)
        for c in (a, space.mutate(a, rng), space.crossover(a, b, rng), space.mutate(a, rng, rate=0.5)):
            assert space.config_from_dict(space.config_to_dict(c)) == c
            vec = space.encode(c)
            assert ((vec >= lower) & (vec <= upper)).all() and space.decode(vec) == c
            assert len(c.n_head) == len(c.d_inner) == len(c.d_head) == c.n_layer
            assert all(h * e == c.d_model for h, e in zip(c.n_head, c.d_head, strict=True))
            model = space.build(c, device="meta")
            assert sum(p.numel() for p in model.parameters()) == space.param_counts(c).total


def test_unused_layer_slots_repeat_the_last_layer():
    space = get_space("gpt2")
    c = tiny("gpt2", n_token=50264, cutoffs=[19997, 39997, 50264], tgt_len=192, d_embed=256,
             d_inner=[256, 512, 1024])  # fmt: skip
    values = dict(zip([g.name for g in space.genes()], space.to_genes(c), strict=True))
    assert values["layers[2].d_inner"] == values["layers[15].d_inner"] == 1024
    assert values["layers[15].n_head"] == 8
    values["n_layer"] = 5  # growing the depth repeats layer 2
    grown = space.from_genes(list(values.values()))
    assert grown.d_inner == (256, 512, 1024, 1024, 1024) and grown.n_head == (2, 4, 8, 8, 8)


def test_pareto_models_encode_in_a_space_with_their_settings(benchmark_configs):
    lm1b = {
        "gpt2": get_space("gpt2", cutoffs=[[50264], [19997, 39997, 50257]], n_token=[50264, 50257],
                          tgt_len=[32, 192], tie_projs=["untie_all", "untie_head"]),
        "transxl": get_space("transxl", n_token=[267735], cutoffs=[[59997, 99997, 267735]], tgt_len=[32],
                             mem_len=[32], tie_projs=["untie_all"]),
    }  # fmt: skip
    n = 0
    for space, folder, eid, config, _ in benchmark_configs:
        if folder.startswith("pareto"):
            sp = lm1b[space.name]
            decoded = sp.decode(sp.encode(config))
            assert decoded.n_token == config.n_token and decoded.cutoffs == config.cutoffs
            assert sp.param_counts(decoded) == sp.param_counts(config), f"{folder}/{eid}"
            n += 1
    assert n == 236
    # the random sets' arbitrary widths are outside the default value sets, and encode says so
    random_cfg = next(c for s, f, _, c, _ in benchmark_configs if f == "random_GPT2_wt103")
    with pytest.raises(ConfigError, match=r"layers\[0\]\.d_inner"):
        get_space("gpt2").encode(random_cfg)


def test_value_sets_are_validated():
    with pytest.raises(ConfigError, match="n_head"):
        get_space("gpt2", n_head=[3])
    with pytest.raises(ConfigError, match="tie_projs"):
        get_space("transxl", tie_projs=["sometimes"])
    space = get_space("transxl", n_layer=[2, 3], d_model=[128], cutoffs=[[100, 267736]])
    c = space.sample(np.random.default_rng(1))
    assert c.n_layer in (2, 3) and c.cutoffs == (100, 267736) and c.tie_projs == (False, True)
    assert space.n_genes == 4 + 2 * 3 + 5
