"""The comparison report: score cache (hits, resume, corrupt entries), workers, report files.

Everything runs on a tiny LTS-style GPT-2 benchmark written into ``tmp_path`` (8 small models,
made-up perplexities), so no benchmark data is needed and the module runs in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from trainfree import cli
from trainfree.bench.correlation import rank_correlation
from trainfree.bench.harness import run_benchmark
from trainfree.bench.loaders import load_benchmark
from trainfree.bench.report import SUMMARY_COLUMNS, write_report
from trainfree.proxies import PROXIES, get_proxy, list_proxies, measure
from trainfree.proxies.balance import AlphaStrategy
from trainfree.proxies.runner import run_pool as _run_pool
from trainfree.runtime.score_cache import CACHE_FORMAT, ScoreCache, default_cache_dir

runner = CliRunner()
ANALYTIC = ["params", "decoder_params", "param_mix"]


def make_tiny_lts(root: Path, n: int = 8, seed: int = 0) -> Path:
    """An archai-layout folder (config_N/jM/model_config.yaml + ppl_summary.yaml)."""
    rng = np.random.default_rng(seed)
    ppl = {}
    for i in range(n):
        layers, d = int(rng.integers(1, 4)), int(rng.choice([32, 64]))
        cfg = {
            "n_token": 300, "n_layer": layers, "d_model": d, "d_embed": d, "div_val": 1, "cutoffs": [],
            "n_head": [int(rng.choice([2, 4])) for _ in range(layers)],
            "d_inner": [int(rng.choice([64, 128, 256])) for _ in range(layers)],
            "tie_projs": [False], "tie_weight": True, "tgt_len": 32, "adaptive": True,
        }  # fmt: skip
        f = root / f"config_{i // 4}" / f"j{i % 4}" / "model_config.yaml"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(yaml.safe_dump(cfg))
        ppl[f"config_{i // 4}_j{i % 4}"] = {"valid_ppl": float(100 - 10 * layers - d / 8 + rng.normal())}
    (root / "ppl_summary.yaml").write_text(yaml.safe_dump(ppl))
    return root


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_lts(tmp_path_factory.mktemp("tiny_lts"))


@pytest.fixture
def bench(tiny_dir):
    return load_benchmark("gpt2", tiny_dir)


CALLS: list[str] = []


@pytest.fixture
def test_proxies():
    """Proxies only this module uses: one that counts its calls, one that fails on deep models,
    one that vandalises the shared model. Unregistered afterwards."""

    @measure("_counting", needs_model=False)
    def _counting(space, config, ctx):
        """Counts calls."""
        CALLS.append(space.config_to_json(config))
        return float(space.param_counts(config).decoder)

    @measure("_flaky", needs_model=False)
    def _flaky(space, config, ctx):
        """Fails on 3-layer models."""
        CALLS.append("flaky")
        if config.n_layer == 3:
            raise MemoryError("pretend out of memory")
        return float(config.n_layer * config.d_model)

    @measure("_vandal", needs_model=True)
    def _vandal(space, config, ctx):
        """Zeroes every weight of the model it is given."""
        for p in ctx.model(space, config).parameters():
            p.data.zero_()
        return 0.0

    CALLS.clear()
    yield
    for name in ("_counting", "_flaky", "_vandal"):
        PROXIES.unregister(name)


def test_cache_hits_and_resume_after_interrupt(bench, tmp_path, test_proxies):
    cache = ScoreCache(tmp_path / "cache")
    n = len(bench)

    def interrupt_after_3(done):
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_benchmark(bench, ["_counting"], cache=cache, on_step=interrupt_after_3)
    assert len(CALLS) == 3
    CALLS.clear()
    resumed = run_benchmark(bench, ["_counting"], cache=ScoreCache(tmp_path / "cache"))
    assert len(CALLS) == n - 3  # the 3 done before the interrupt are not recomputed
    assert (resumed.computed, resumed.cached, resumed.invalid) == (n - 3, 3, 0)
    CALLS.clear()
    again = run_benchmark(bench, ["_counting"], cache=ScoreCache(tmp_path / "cache"))
    assert CALLS == [] and (again.computed, again.cached) == (0, n)
    np.testing.assert_array_equal(again.runs["_counting"].scores, resumed.runs["_counting"].scores)
    # timings are those measured when the scores were computed
    np.testing.assert_array_equal(again.runs["_counting"].seconds, resumed.runs["_counting"].seconds)
    # another setting that can change a score is another key: recomputed
    run_benchmark(bench, ["_counting"], cache=ScoreCache(tmp_path / "cache"), seed=1)
    assert len(CALLS) == n
    CALLS.clear()
    run_benchmark(bench, ["_counting"], cache=ScoreCache(tmp_path / "cache"), seq_len=16)
    assert len(CALLS) == n


def _entry_paths(cache: ScoreCache, bench, proxy: str) -> list[Path]:
    return [
        cache.path(ScoreCache.spec(bench.space, e.config, get_proxy(proxy), 0, None, None, {}))
        for e in bench.entries
    ]


def test_corrupt_or_foreign_entries_are_recomputed(bench, tmp_path, test_proxies):
    root = tmp_path / "cache"
    first = run_benchmark(bench, ["_counting"], cache=ScoreCache(root))
    paths = _entry_paths(ScoreCache(root), bench, "_counting")
    assert all(p.is_file() for p in paths)
    text = paths[0].read_text()
    paths[0].write_text(text[: len(text) // 2])  # truncated
    paths[1].write_bytes(b"\x00\xffgarbage")  # not JSON
    paths[2].write_text(paths[3].read_text())  # another architecture's entry (wrong key)
    entry = json.loads(paths[4].read_text())
    entry["value"] = 12345.0  # tampered value: the checksum no longer matches
    paths[4].write_text(json.dumps(entry))
    foreign = json.loads(paths[5].read_text())  # another space's entry claiming this key
    foreign["spec"]["space"] = "transxl"
    paths[5].write_text(json.dumps(foreign))
    old = json.loads(paths[6].read_text())
    old["format"] = CACHE_FORMAT + 1  # another cache format
    paths[6].write_text(json.dumps(old))
    CALLS.clear()
    cache = ScoreCache(root)
    second = run_benchmark(bench, ["_counting"], cache=cache)
    assert len(CALLS) == 6 and second.invalid == 6 and second.cached == len(bench) - 6
    assert sorted(cache.invalid_paths) == sorted(paths[:3] + paths[4:7])
    np.testing.assert_array_equal(second.runs["_counting"].scores, first.runs["_counting"].scores)
    CALLS.clear()
    third = run_benchmark(bench, ["_counting"], cache=ScoreCache(root))  # rewritten, now valid
    assert CALLS == [] and third.invalid == 0 and third.cached == len(bench)


def test_failures_are_counted_not_fatal_and_not_cached(bench, tmp_path, test_proxies):
    deep = sum(e.config.n_layer == 3 for e in bench.entries)
    assert 0 < deep < len(bench) - 3
    res = run_benchmark(bench, ["_flaky", "params"], cache=ScoreCache(tmp_path / "c"))
    run = res.runs["_flaky"]
    assert len(run.errors) == deep and "MemoryError: pretend out of memory" in next(iter(run.errors.values()))
    assert run.result["n"] == len(bench) - deep and run.result["n_invalid"] == deep
    assert math.isfinite(run.result["spearman"]) and res.runs["params"].result["n"] == len(bench)
    CALLS.clear()
    again = run_benchmark(bench, ["_flaky"], cache=ScoreCache(tmp_path / "c"))
    assert len(CALLS) == deep and len(again.runs["_flaky"].errors) == deep  # failures are retried
    md = write_report(tmp_path / "rep", bench, res, plots=False)[-1].read_text()
    assert "## Failures" in md and f"`_flaky` failed on {deep} architectures" in md


def test_each_proxy_gets_a_pristine_model(bench, test_proxies):
    alone = run_benchmark(bench, ["zerolm"], alpha=AlphaStrategy("fixed", 0.5)).runs
    for names in (["_vandal", "zerolm"], ["zerolm", "_vandal"]):
        mixed = run_benchmark(bench, names, alpha=AlphaStrategy("fixed", 0.5)).runs
        for key, values in alone["zerolm"].components.items():
            np.testing.assert_array_equal(mixed["zerolm"].components[key], values)


def test_changing_alpha_needs_no_recomputation(bench, tmp_path):
    root = tmp_path / "cache"
    first = run_benchmark(bench, ["zerolm"], cache=ScoreCache(root))
    assert first.computed == len(bench)
    fixed = run_benchmark(bench, ["zerolm"], cache=ScoreCache(root), alpha=AlphaStrategy("fixed", 0.3))
    assert fixed.computed == 0 and fixed.cached == len(bench)
    assert fixed.runs["zerolm"].result["alpha"] == 0.3
    comps, agg = fixed.runs["zerolm"].components, fixed.runs["zerolm"].result["aggregate"]
    expected = 0.3 * comps[f"attention_{agg}"] + 0.7 * comps[f"ffn_{agg}"]
    np.testing.assert_allclose(fixed.runs["zerolm"].scores, expected, rtol=1e-12)


def test_two_workers_equal_one(bench, tmp_path):
    names = [*ANALYTIC, "zerolm"]
    one = run_benchmark(bench, names, workers=1)
    two = run_benchmark(bench, names, workers=2, cache=ScoreCache(tmp_path / "cache"))
    assert two.workers == 2 and two.computed == len(names) * len(bench)
    for name in names:  # float32 SVDs may differ in the last digits with the number of threads
        np.testing.assert_allclose(two.runs[name].scores, one.runs[name].scores, rtol=1e-6)
        assert two.runs[name].result["spearman"] == pytest.approx(one.runs[name].result["spearman"])
        assert (two.runs[name].seconds > 0).all()


def _die_on_deep_models(config, names):
    import os

    if config.n_layer == 3:
        os._exit(1)  # a worker killed (by the OS, for memory, say)
    return {name: (float(config.d_model), 0.0, None) for name in names}


def test_a_dying_worker_fails_only_its_architecture(bench):
    tasks = [(i, e.config, ["x"]) for i, e in enumerate(bench.entries)][:4]
    assert [t[1].n_layer == 3 for t in tasks].count(True) == 1
    got = {}
    _run_pool(tasks, 1, bench.space, {}, lambda i, res: got.update({i: res["x"]}), _die_on_deep_models)
    assert sorted(got) == [0, 1, 2, 3]
    for i, config, _ in tasks:
        if config.n_layer == 3:
            assert got[i][0] is None and "worker process died" in got[i][2]
        else:
            assert got[i] == (float(config.d_model), 0.0, None)


def test_report_files_and_recomputation(bench, tmp_path):
    res = run_benchmark(bench, [*ANALYTIC, "zerolm"], cache=ScoreCache(tmp_path / "cache"))
    out = tmp_path / "report"
    write_report(out, bench, res)
    summary = pd.read_csv(out / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert set(summary["proxy"]) == {*ANALYTIC, "zerolm"}
    assert list(summary["spearman"]) == sorted(summary["spearman"], reverse=True)
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns[:6]) == ["id", "ground_truth", *ANALYTIC, "zerolm"]
    assert "zerolm.attention_sum" in scores.columns and "param_mix.ffn_layer" in scores.columns
    assert list(scores["id"]) == [e.id for e in bench.entries]
    for row in summary.itertuples():
        again = rank_correlation(scores[row.proxy], scores["ground_truth"], higher_is_better=False)
        assert again.spearman == pytest.approx(row.spearman, abs=1e-12)
        assert again.kendall == pytest.approx(row.kendall, abs=1e-12)
        assert again.spearman_ci[0] == pytest.approx(row.spearman_lo, abs=1e-12)
        assert (out / "plots" / f"{row.proxy}.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "| proxy | n | Spearman [95% CI] | Kendall [95% CI]" in md and "ms/arch" in md
    zerolm = summary.set_index("proxy").loc["zerolm"]
    assert zerolm["alpha_strategy"] == "heuristic" and 0 <= zerolm["alpha"] <= 1
    assert not zerolm["needs_data"] and not zerolm["needs_grad"]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINFREE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "scores"
    monkeypatch.delenv("TRAINFREE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "trainfree" / "scores"


def test_cli_bench_report_cache_and_all(tiny_dir, tmp_path):
    args = [
        "bench",
        "--space",
        "gpt2",
        "--data",
        str(tiny_dir),
        "--cache",
        str(tmp_path / "cache"),
        "--workers",
        "1",
    ]
    args += ["--proxy", "params", "--proxy", "zerolm", "--json", str(tmp_path / "r.json")]
    res = runner.invoke(cli.app, [*args, "--report", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["cache"] == {"dir": str(tmp_path / "cache"), "computed": 16, "cached": 0, "invalid": 0}
    written = {"report.md", "report.html", "summary.csv", "scores.csv", "plots"}
    assert {p.name for p in (tmp_path / "r").iterdir()} == written
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Plotly.newPlot" in page and 'uid":"proxy-zerolm' in page.replace(" ", "")
    res = runner.invoke(cli.app, [*args, "--alpha", "0.2"])
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "r.json").read_text())
    assert (payload["cache"]["computed"], payload["cache"]["cached"]) == (0, 16)
    assert payload["proxies"]["zerolm"]["alpha"] == 0.2


def test_cli_proxy_all(tiny_dir, tmp_path):
    """``--proxy all`` evaluates every registered proxy (a failing one is reported, not fatal)."""
    small = make_tiny_lts(tmp_path / "lts", n=4, seed=1)
    res = runner.invoke(
        cli.app,
        ["bench", "--space", "gpt2", "--data", str(small), "--no-cache", "--workers", "1", "--proxy", "all",
         "--seq-len", "8", "--batch-size", "2", "--report", str(tmp_path / "all")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(tmp_path / "all" / "summary.csv")
    assert set(summary["proxy"]) == set(list_proxies())
    assert set(pd.read_csv(tmp_path / "all" / "scores.csv").columns) >= {
        "id",
        "ground_truth",
        *list_proxies(),
    }


def test_tau_iso_counts_only_size_matched_pairs():
    from trainfree.bench.correlation import tau_iso

    sizes = np.array([100, 105, 200, 210, 400])
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # the size itself orders every pair right, but among size-matched pairs it knows nothing
    assert tau_iso(sizes.astype(float), truth, sizes) == 1.0
    flat = np.array([5.0, 5.0, 7.0, 7.0, 9.0])  # ranks the groups, ties within them
    assert np.isnan(tau_iso(flat, truth, sizes))
    within = np.array([0.0, 1.0, 0.0, 1.0, 0.0])  # right within each matched pair, blind across
    assert tau_iso(within, truth, sizes) == 1.0
    assert tau_iso(-within, truth, sizes) == -1.0
    assert tau_iso(within, -truth, sizes, higher_is_better=False) == 1.0
