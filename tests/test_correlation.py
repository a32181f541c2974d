import math

import numpy as np
import pytest
from scipy import stats

from trainfree.bench.correlation import rank_correlation, top_fraction_precision


def test_perfect_and_reversed_rankings():
    truth = np.arange(50, dtype=float)
    r = rank_correlation(truth * 2 + 1, truth, higher_is_better=True, n_boot=50)
    assert r.spearman == pytest.approx(1.0) and r.kendall == pytest.approx(1.0)
    assert r.top10_precision == 1.0
    # perplexity-like ground truth: lower is better, so a proxy that grows as ppl falls is perfect
    r = rank_correlation(-truth, truth, higher_is_better=False, n_boot=50)
    assert r.spearman == pytest.approx(1.0) and r.kendall == pytest.approx(1.0)


def test_matches_scipy_and_interval_brackets_estimate():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=200)
    scores = truth + rng.normal(scale=1.0, size=200)
    r = rank_correlation(scores, truth, n_boot=300)
    assert r.spearman == pytest.approx(stats.spearmanr(scores, truth).statistic)
    assert r.kendall == pytest.approx(stats.kendalltau(scores, truth).statistic)
    assert r.spearman_ci[0] < r.spearman < r.spearman_ci[1]
    assert r.kendall_ci[0] < r.kendall < r.kendall_ci[1]
    assert 0.5 < r.spearman < 0.9


def test_invalid_scores_are_left_out_and_counted():
    truth = np.arange(10.0)
    scores = truth.copy()
    scores[[2, 5]] = np.nan
    scores[7] = np.inf
    r = rank_correlation(scores, truth, n_boot=20)
    assert r.n == 7 and r.n_invalid == 3
    assert r.spearman == pytest.approx(1.0)


def test_too_few_points_give_nan_not_crash():
    r = rank_correlation([1.0, np.nan], [1.0, 2.0], n_boot=10)
    assert r.n == 1 and math.isnan(r.spearman)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal length"):
        rank_correlation([1.0, 2.0, 3.0], [1.0, 2.0])


def test_top_fraction_precision_counts_overlap():
    truth = np.arange(20.0)
    scores = truth.copy()
    scores[19], scores[0] = scores[0], scores[19]  # the best model ranked last, the worst first
    assert top_fraction_precision(scores, truth, 0.1) == 0.5
