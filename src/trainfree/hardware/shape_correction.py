"""The cost model's shape correction of the latency: a small gradient-boosted tree ensemble
(LightGBM) on the architecture's gene values and log features, fitted to the linear model's log
residual (why: :mod:`trainfree.hardware.costmodel`'s docstring). Stored as LightGBM's text model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def fit_correction(Z: np.ndarray, y: np.ndarray, linear: np.ndarray) -> Any:
    """LightGBM on the log residual of the linear prediction: few, shallow trees with at
    least 8 models per leaf, as a calibration sample of 30-150 models allows."""
    import lightgbm as lgb

    params = {
        "objective": "l2",
        "num_leaves": 4,
        "min_data_in_leaf": 8,
        "learning_rate": 0.1,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": 0,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    data = lgb.Dataset(Z, np.log(y / np.maximum(linear, 1e-6)), params={"max_bin": 63, "min_data_in_bin": 1})
    return lgb.train(params, data, num_boost_round=60)


def load_booster(text: str) -> Any:
    import lightgbm as lgb

    return lgb.Booster(model_str=text)


def floats(values: Any) -> list[float] | None:
    """Gene values as floats (None for NaN, as JSON writes it); None if they are not numbers."""
    try:
        return [math.nan if v is None else float(v) for v in values]
    except (TypeError, ValueError):
        return None


def gene_matrix(rows: Sequence[dict[str, Any]]) -> np.ndarray | None:
    """Every row's genes, or None unless each row has them, all numbers and of one length."""
    genes = [floats(r.get("genes")) if isinstance(r.get("genes"), list) else None for r in rows]
    if not genes or any(not g or len(g) != len(genes[0]) for g in genes):
        return None
    return np.array(genes, dtype=float)


def shape_inputs(G: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The correction's inputs: the gene values and the log of the (unscaled) features."""
    return np.hstack([G, np.log(np.maximum(X, 1.0))])
