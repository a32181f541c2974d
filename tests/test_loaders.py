"""Benchmark loaders on the shipped data and on deliberately broken copies of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from trainfree.bench import load_benchmark, rank_correlation
from trainfree.bench.loaders import BenchmarkEntry
from trainfree.errors import BenchmarkDataError
from trainfree.spaces.base import BenchmarkSource
from trainfree.spaces.gpt2 import GPT2Space


def test_nas_bench_bert_loads_all_500(data_dir):
    bench = load_benchmark("flexibert", data_dir / "nas-bench-bert" / "BERT_benchmark.json")
    assert len(bench) == 500 and not bench.skipped and bench.higher_is_better
    first = bench.entries[0]
    assert first.id == "0" and first.ground_truth == pytest.approx(74.73375)
    assert first.extra["cola"] == pytest.approx(42.69)
    # a folder works too, and per-task targets are available
    bench = load_benchmark("flexibert", data_dir / "nas-bench-bert", target="rte")
    assert bench.entries[0].ground_truth == pytest.approx(62.82)


@pytest.mark.parametrize(
    ("space", "folder", "count"),
    [("gpt2", "random_GPT2_wt103", 200), ("transxl", "random_TransXL_wt103", 200)],
)
def test_lts_random_sets_load(data_dir, space, folder, count):
    bench = load_benchmark(space, data_dir / "lts" / folder)
    assert len(bench) == count and not bench.skipped and not bench.higher_is_better
    ids = [e.id for e in bench.entries]
    assert ids[0] == "config_0_j0" and len(set(ids)) == count
    assert "params" in bench.entries[0].extra


def test_lts_pareto_sets_load_with_scalar_ppl(data_dir):
    for folder in sorted((data_dir / "lts").glob("pareto_*")):
        space = "gpt2" if "GPT2" in folder.name else "transxl"
        bench = load_benchmark(space, folder)
        expected = len(list(folder.glob("M*/model_config.yaml")))
        assert len(bench) + len(bench.skipped) == expected
        assert all(np.isfinite(e.ground_truth) for e in bench.entries)
        assert "latency" in bench.entries[0].extra and "memory" in bench.entries[0].extra


def _copy_lts(data_dir: Path, tmp_path: Path, n: int = 3) -> Path:
    src = data_dir / "lts" / "random_GPT2_wt103"
    dst = tmp_path / "lts"
    for j in range(n):
        (dst / "config_0" / f"j{j}").mkdir(parents=True)
        shutil.copy(src / "config_0" / f"j{j}" / "model_config.yaml", dst / "config_0" / f"j{j}")
    ppl = yaml.safe_load((src / "ppl_summary.yaml").read_text())
    keep = {k: v for k, v in ppl.items() if k in {f"config_0_j{j}" for j in range(n)}}
    (dst / "ppl_summary.yaml").write_text(yaml.safe_dump(keep))
    return dst


def test_lts_homogeneous_forms_and_extra_keys(data_dir, tmp_path):
    dst = _copy_lts(data_dir, tmp_path)
    cfg_file = dst / "config_0" / "j1" / "model_config.yaml"
    cfg = yaml.safe_load(cfg_file.read_text())
    cfg.update(
        d_inner=1024,
        n_head=4,
        d_embed=-1,
        n_token=793471,
        div_val=2,
        cutoffs=[59997, 99997, 639997],
        some_new_key="ignored",
    )
    cfg_file.write_text(yaml.safe_dump(cfg))
    ppl = yaml.safe_load((dst / "ppl_summary.yaml").read_text())
    ppl["config_0_j1"]["valid_ppl_extra_metric"] = 3.0
    (dst / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    bench = load_benchmark("gpt2", dst)
    assert [e.id for e in bench.entries] == ["config_0_j0", "config_0_j1", "config_0_j2"]
    c = bench.entries[1].config
    assert bench.space.vocab_size(c) == 793471
    assert bench.space.param_counts(c).total > 0


def test_lts_entry_without_ground_truth_is_reported(data_dir, tmp_path):
    dst = _copy_lts(data_dir, tmp_path)
    ppl = yaml.safe_load((dst / "ppl_summary.yaml").read_text())
    del ppl["config_0_j2"]
    ppl["config_0_j1"] = {"test_ppl": 30.0}  # no valid_ppl
    (dst / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    bench = load_benchmark("gpt2", dst)
    assert [e.id for e in bench.entries] == ["config_0_j0"]
    assert {eid for eid, _ in bench.skipped} == {"config_0_j1", "config_0_j2"}
    assert load_benchmark("gpt2", dst, target="test_ppl").entries[1].ground_truth == 30.0


def test_lts_malformed_files_name_the_file(data_dir, tmp_path):
    dst = _copy_lts(data_dir, tmp_path)
    bad = dst / "config_0" / "j1" / "model_config.yaml"
    bad.write_text("d_model: [unclosed\n")
    with pytest.raises(BenchmarkDataError, match=r"config_0/j1/model_config.yaml"):
        load_benchmark("gpt2", dst)
    cfg = yaml.safe_load((data_dir / "lts/random_GPT2_wt103/config_0/j1/model_config.yaml").read_text())
    cfg["d_model"] = "wide"
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(BenchmarkDataError, match=r"j1/model_config.yaml.*d_model"):
        load_benchmark("gpt2", dst)
    (dst / "ppl_summary.yaml").unlink()
    with pytest.raises(BenchmarkDataError, match=r"ppl_summary\.yaml"):
        load_benchmark("gpt2", dst)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkDataError, match=r"no model_config\.yaml"):
        load_benchmark("gpt2", tmp_path / "empty")


def test_nas_bench_bert_bad_entries(data_dir, tmp_path):
    entries = json.loads((data_dir / "nas-bench-bert" / "BERT_benchmark.json").read_text())[:5]
    del entries[1]["scores"]["glue"]
    f = tmp_path / "bench.json"
    f.write_text(json.dumps(entries))
    bench = load_benchmark("flexibert", f)
    assert len(bench) == 4 and bench.skipped[0][0] == str(entries[1]["id"])
    layer = entries[2]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0]
    layer["operation_type"] = "MLP"
    f.write_text(json.dumps(entries))
    with pytest.raises(BenchmarkDataError, match=rf"entry {entries[2]['id']}.*operation"):
        load_benchmark("flexibert", f)
    f.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(BenchmarkDataError, match="JSON list"):
        load_benchmark("flexibert", f)
    f.write_text("{broken")
    with pytest.raises(BenchmarkDataError, match="cannot read JSON"):
        load_benchmark("flexibert", f)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(BenchmarkDataError, match="no such file"):
        load_benchmark("gpt2", tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("space", "path", "proxy", "rho", "tau"),
    [
        ("gpt2", "lts/random_GPT2_wt103", "decoder", 0.967, 0.847),
        ("transxl", "lts/random_TransXL_wt103", "decoder", 0.974, 0.861),
        ("gpt2", "lts/random_GPT2_wt103", "total", 0.737, 0.582),
        ("flexibert-published", "nas-bench-bert", "total", 0.652, 0.454),
        ("flexibert", "nas-bench-bert", "total", 0.676, 0.485),
    ],
)
def test_parameter_counts_reproduce_published_correlations(data_dir, space, path, proxy, rho, tau):
    """The figures in the benchmark README, reproduced from our own counts."""
    bench = load_benchmark(space, data_dir / path)
    scores = [getattr(bench.space.param_counts(e.config), proxy) for e in bench.entries]
    r = rank_correlation(scores, [e.ground_truth for e in bench.entries], bench.higher_is_better, n_boot=10)
    assert r.spearman == pytest.approx(rho, abs=5e-4)
    assert r.kendall == pytest.approx(tau, abs=5e-4)


def _read_json_lines(space, path: Path, target: str):
    """A toy benchmark format: one JSON object per line, ``{"config": ..., target: value}``."""
    entries = []
    for i, line in enumerate(path.read_text().splitlines()):
        row = json.loads(line)
        entries.append(BenchmarkEntry(str(i), space.config_from_benchmark(row["config"]), row[target]))
    return path, entries, []


class _ToyBenchmarkSpace(GPT2Space):
    """A space whose benchmark has its own format: declared here, with no edit to loaders.py."""

    name = "gpt2-toy"
    benchmark = BenchmarkSource("the toy benchmark", "toy/bench.jsonl", _read_json_lines, ("acc",), True)

    def config_from_benchmark(self, entry, where=None):
        return self.config_from_dict(entry, where)


def test_a_space_declares_its_own_benchmark(tmp_path, monkeypatch):
    space = _ToyBenchmarkSpace(n_layer=[2])
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(3)]
    (tmp_path / "toy").mkdir()
    lines = [json.dumps({"config": space.config_to_dict(c), "acc": 0.5 + i}) for i, c in enumerate(configs)]
    (tmp_path / "toy" / "bench.jsonl").write_text("\n".join(lines))
    monkeypatch.setenv("TRAINFREE_DATA", str(tmp_path))  # the declared path, under the data root
    bench = load_benchmark(space)
    assert bench.higher_is_better and bench.target == "acc"
    assert [e.config for e in bench.entries] == configs and bench.entries[2].ground_truth == 2.5
    with pytest.raises(BenchmarkDataError, match=r"target 'ppl' unknown for the toy benchmark"):
        load_benchmark(space, target="ppl")

    class NoBenchmark(_ToyBenchmarkSpace):
        name = "gpt2-none"
        benchmark = None

    with pytest.raises(BenchmarkDataError, match=r"has no benchmark: .*\(spaces with one: .*gpt2"):
        load_benchmark(NoBenchmark())
