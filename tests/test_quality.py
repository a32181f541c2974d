"""Predicted quality: the split-conformal interval, the held-out judgement, the shipped fits
(reproduced from the benchmark), and a space without a benchmark saying why it has no unit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from trainfree.quality import QualityFit, conformal_halfwidth, fit_quality, judge, shipped_fit
from trainfree.quality_fits import FITS


def test_conformal_halfwidth_is_the_ceil_n_plus_1_quantile():
    r = np.arange(1.0, 10.0)  # 9 residuals: ceil(10 * 0.9) = 9th smallest
    assert conformal_halfwidth(r, 0.9) == 9.0
    assert conformal_halfwidth(-r, 0.5) == 5.0  # absolute values; ceil(10 * 0.5) = 5th
    assert conformal_halfwidth(r[:3], 0.9) == np.inf  # too few for the level


def test_judged_coverage_is_near_nominal_and_errors_small():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 400)
    y = np.exp(4 - 0.2 * x + rng.normal(0, 0.05, 400))  # a perplexity falling with the score
    j = judge(lambda seen: x, y, target="valid_ppl", higher_is_better=False, splits=20, seed=0)
    assert 0.85 <= j["coverage"] <= 0.97, j
    assert j["median_abs_error"] < 0.1 * np.median(y), j
    scrambled = judge(lambda seen: rng.permutation(x), y, target="valid_ppl", higher_is_better=False)
    assert scrambled["median_abs_error"] > 2 * j["median_abs_error"]  # a useless proxy shows


def test_a_fit_predicts_monotone_values_inside_their_interval():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 100)
    q = fit_quality(x, 60 + 20 * x, target="glue", higher_is_better=True, rng=rng,
                    space="s", proxy="p", balance=None, benchmark="b")
    value, low, high = q.predict([0.1, 0.5, 0.9, 5.0])
    assert (np.diff(value) >= 0).all() and (low <= value).all() and (value <= high).all()
    assert q.fields(5.0)["outside_benchmark"] and not q.fields(0.5)["outside_benchmark"]
    assert QualityFit.from_dict(q.to_dict()) == q


def test_a_space_without_a_benchmark_says_why_there_is_no_unit():
    fit, why = shipped_fit("llama", "zerolm", None)
    assert fit is None and "no published trained benchmark" in why
    fit, why = shipped_fit("gpt2", "flops", None)
    assert fit is None and "none for flops" in why


def test_shipped_fit_is_what_the_script_fits(data_dir):
    """benchmarks/quality_fit.py, run again on the benchmark, gives the shipped fit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import quality_fit
    finally:
        sys.path.pop(0)
    got = quality_fit.fit_one("gpt2", "decoder_params", cache=None)
    shipped = next(d for d in FITS if d["space"] == "gpt2" and d["proxy"] == "decoder_params")
    assert got["x"] == pytest.approx(shipped["x"]) and got["y"] == pytest.approx(shipped["y"])
    assert got["halfwidth"] == pytest.approx(shipped["halfwidth"])
    assert got["judged"] == pytest.approx(shipped["judged"])
