"""Cost models: latency and memory predicted from analytic features, calibrated on the device.

Measuring a model takes about a second (a fresh process, a build, a dozen forward passes);
predicting its cost takes microseconds. A :class:`CostModel` is fitted on a calibration sample
of a space measured on this device, with the space's ``cost_features`` (FLOPs, parameters,
layers, ...) as inputs:

- **latency** is a non-negative linear combination of the features plus a constant
  (scikit-learn's ``LinearRegression(positive=True)``), weighted by ``1 / latency^2`` so that
  the fit minimises *relative* error (a 10% miss on a 20 ms model counts like one on a
  400 ms model). Every feature is a count of work, so a non-negative weight per unit of work
  is what the hardware can be; a linear model also extrapolates to the edges of the space,
  where the frontier lies, which tree ensembles cannot;
- **memory** is the footprint ``weights_mb + activation_mb``: the weights are exact (the
  parameter count times 4 bytes), the activation peak is predicted like the latency;
- a **shape correction** of the latency: a small gradient-boosted tree ensemble (LightGBM) on
  the architecture's gene values and log features, fitted to the linear model's log residual,
  multiplies its prediction. A matrix product's speed depends on its shape (a narrow inner
  dimension or an odd width runs below the machine's peak), which no weight per FLOP can say;
  trees learn that from the calibration sample and, being piecewise constant, never
  extrapolate beyond the corrections they saw, so the linear part still carries the edges of
  the space. It is kept only where it lowers the cross-validated median error (on GPT-2 it
  does; see docs/search.md), and stored as LightGBM's text model (data, not code);
- **sessions**: the machine's speed drifts (12% within hours on a shared VM), so latencies
  measured at different times are first put on the level of the latest session
  (:mod:`trainfree.hardware.drift`); predictions are latencies as the machine runs now.

The model's accuracy is always reported *held out*: k-fold cross-validated predictions on the
calibration sample (Spearman, median absolute percentage error, share within +-10%). The
search refits it as the measurements of frontier models arrive. A model is plain data (its
coefficients), saved as JSON, never pickled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trainfree.errors import ConfigError
from trainfree.hardware import drift
from trainfree.hardware.cost_accuracy import DISTINCT, accuracy
from trainfree.hardware.shape_correction import (
    fit_correction,
    floats,
    gene_matrix,
    load_booster,
    shape_inputs,
)
from trainfree.objectives import model_targets

#: what a cost model predicts, from which record fields: the ``target`` of each registered
#: measured objective (:mod:`trainfree.objectives`; latency and memory's activations), and,
#: predicted too when every calibration row has them, those of generation objectives (the
#: prefill; a generation measurement's ``latency_ms`` is the decode time per token, predicted
#: as ``decode_ms_per_token``)
TARGETS, OPTIONAL_TARGETS = model_targets()
MB = 1024.0 * 1024.0
#: the accuracy bar, held out: the share of pairs of models whose measured costs differ by
#: more than ``DISTINCT`` that the predictions put in the same order. That is what the search
#: asks of the model (which of two candidates is cheaper), and pairs closer than that are
#: within the frontier's resolution and a busy machine's noise anyway; a Spearman correlation
#: over 16 points instead fell to 0.81 on a busy laptop for noise among near-twins. Models
#: saved before it are judged by their Spearman correlation (``MIN_SPEARMAN``).
MIN_ORDERED = 0.9
MIN_SPEARMAN = 0.9
MIN_SAMPLES = 12
#: the robust fit: Huber's constant (95% efficiency under normal noise) and the reweightings
HUBER_K, ROBUST_ROUNDS = 1.345, 3


def cost_features(space: Any, config: Any, batch_size: int, seq_len: int) -> dict[str, float]:
    return {k: float(v) for k, v in space.cost_features(config, batch_size, seq_len).items()}


def features_for(space: Any, config: Any, hardware: Any) -> dict[str, float]:
    """The cost-model inputs of ``config`` measured with ``hardware``: its backend's own where
    it has them (``Backend.cost_features``: llama.cpp's kernels), else a forward pass's
    (``cost_features``), or, measuring generation, the space's ``generation_features`` (the
    work of a decode step at the context and of the prefill)."""
    backend = getattr(hardware, "backend", None)
    if backend is not None:
        from trainfree.hardware.settings import get_backend

        own = get_backend(backend).cost_features(space, config, hardware)
        if own is not None:
            return {k: float(v) for k, v in own.items()}
    if getattr(hardware, "mode", "forward") == "generate":
        feats = space.generation_features(config, hardware.batch_size, hardware.prompt_len, hardware.context)
        return {k: float(v) for k, v in feats.items()}
    return cost_features(space, config, hardware.batch_size, hardware.seq_len)


def gene_values(space: Any, config: Any) -> list[float]:
    """``space.gene_values(config)``, the shape correction's inputs; [] for a config the
    space cannot describe as genes (its rows then get the linear prediction)."""
    try:
        return space.gene_values(config)
    except (ConfigError, ValueError, TypeError, AttributeError):
        return []


def weights_mb(space: Any, config: Any, hardware: Any = None) -> float:
    """The weights' size as the profiler reports ``weights_mb``: the float32 parameters, or
    what the backend says they are exactly (llamacpp: the GGUF file's tensors in its format)."""
    if hardware is not None and hasattr(hardware, "backend"):
        from trainfree.hardware.settings import get_backend

        exact = get_backend(hardware.backend).weights_mb(config, hardware)
        if exact is not None:
            return exact
    return space.param_counts(config).total * 4 / MB


def _fit_one(X: np.ndarray, y: np.ndarray, rounds: int | None = None) -> tuple[np.ndarray, float]:
    """The non-negative linear fit of relative error, made robust by iteratively reweighted
    least squares with Huber's weights: a measurement whose relative residual lies beyond
    ``HUBER_K`` robust standard deviations (1.4826 x the median absolute deviation) counts
    less, in proportion. One measurement taken while another program thrashed the caches
    then cannot pull the line through itself. ``rounds`` reweightings (``ROBUST_ROUNDS``)."""
    from sklearn.linear_model import LinearRegression

    reg = LinearRegression(positive=True)
    base = 1.0 / np.maximum(y, 1e-9) ** 2
    huber = np.ones(len(y))
    for _ in range(1 + (ROBUST_ROUNDS if rounds is None else rounds)):
        reg.fit(X, y, sample_weight=base * huber)
        r = (reg.predict(X) - y) / np.maximum(y, 1e-9)
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        if len(y) < 2 * X.shape[1] or not scale > 1e-6:
            break  # too few rows to tell an outlier, or a fit already exact
        huber = np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(r), 1e-12))
    return reg.coef_.astype(float), float(reg.intercept_)


@dataclass
class CostModel:
    """Fitted coefficients per target over scaled features, and their held-out accuracy."""

    features: list[str]
    scale: list[float]
    coef: dict[str, list[float]]
    intercept: dict[str, float]
    n: int
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the latency's shape correction (LightGBM's text model; "": none) and its gene count
    correction: str = ""
    n_genes: int = 0
    #: the measurement sessions the latency was levelled over (``drift.describe``)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def matrix(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        X = np.array([[float(r[f]) for f in self.features] for r in rows], dtype=float).reshape(
            -1, len(self.features)
        )
        return X / np.asarray(self.scale)

    def predict(
        self,
        rows: Sequence[dict[str, float]],
        weights: Sequence[float],
        genes: Sequence[Sequence[float] | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """``{latency_ms, activation_mb, memory_mb}`` for feature rows (``weights``: MB;
        ``genes``: each row's :func:`gene_values`, for the shape correction; a row without
        them gets the linear prediction)."""
        X = self.matrix(rows)
        out = {t: X @ np.asarray(self.coef[t]) + self.intercept[t] for t in self.targets}
        out["activation_mb"] = np.maximum(out["activation_mb"], 0.0)
        out["latency_ms"] = np.maximum(out["latency_ms"], 1e-6)
        if self.correction and genes is not None and len(rows):
            out["latency_ms"] = out["latency_ms"] * self._correct(X, genes)
        out["memory_mb"] = np.asarray(weights, dtype=float) + out["activation_mb"]
        # a generation model's latency is the decode time per token; a forward model has none
        none = np.full(len(X), math.nan)
        out["decode_ms_per_token"] = out["latency_ms"] if self.generation else none
        out["prefill_ms"] = np.maximum(out["prefill_ms"], 1e-6) if self.generation else none
        return out

    @property
    def targets(self) -> tuple[str, ...]:
        return (*TARGETS, *(t for t in OPTIONAL_TARGETS if t in self.coef))

    @property
    def generation(self) -> bool:
        """Fitted on generation measurements (prefill and decode, memory at the context)."""
        return "prefill_ms" in self.coef

    def _correct(self, X: np.ndarray, genes: Sequence[Sequence[float] | None]) -> np.ndarray:
        values = [floats(g) for g in genes]
        ok = np.array([v is not None and len(v) == self.n_genes for v in values])
        factor = np.ones(len(genes))
        if ok.any():
            G = np.array([v for v, good in zip(values, ok, strict=True) if good])
            if self._booster is None:
                self._booster = load_booster(self.correction)
            factor[ok] = np.exp(self._booster.predict(shape_inputs(G, X[ok] * self.scale)))
        return factor

    def form(self) -> str:
        """Which form the model took (the shape correction is kept only where it helps), and
        over how many measurement sessions its latencies were levelled: what the CLI prints."""
        form = "linear + shape correction" if self.correction else "linear"
        k = len(self.sessions)
        f = [s["factor"] for s in self.sessions[:-1]]  # an earlier session's latencies over the latest's
        if f and set(f) != {1.0}:
            form += f"; {k} sessions levelled to the latest (earlier: {min(f):.2f}-{max(f):.2f}x)"
        elif f:
            form += f"; {k} sessions, no drift beyond their noise"
        return form

    def trustworthy(self) -> tuple[bool, str]:
        """Whether held-out accuracy allows searching on predictions, and why not."""
        if self.n < MIN_SAMPLES:
            return False, f"only {self.n} calibration measurements (at least {MIN_SAMPLES} needed)"
        for target in ("latency_ms", "memory_mb", *(t for t in OPTIONAL_TARGETS if t in self.coef)):
            acc = self.accuracy.get(target, {})
            if "pairs_ordered" not in acc:  # saved before the bar was on ordered pairs
                rho = acc.get("spearman", math.nan)
                if not rho >= MIN_SPEARMAN:
                    return False, f"held-out {target} Spearman {rho:.3f} < {MIN_SPEARMAN}"
                continue
            ordered = acc["pairs_ordered"]  # None or NaN: no pairs that far apart to judge
            if isinstance(ordered, (int, float)) and ordered < MIN_ORDERED:
                return False, (
                    f"held out, it orders {100 * ordered:.0f}% of {target.split('_')[0]} pairs "
                    f"more than {100 * DISTINCT:.0f}% apart; {100 * MIN_ORDERED:.0f}% needed"
                )
        return True, ""

    def __post_init__(self) -> None:
        self._booster: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> CostModel:
        """A model read back from JSON, its shape checked (ValueError otherwise)."""
        try:
            model = cls(**data)
            k = len(model.features)
            ok = (
                k > 0
                and len(model.scale) == k
                and set(model.coef) <= {*TARGETS, *OPTIONAL_TARGETS}
                and all(len(model.coef[t]) == k and math.isfinite(model.intercept[t]) for t in model.targets)
                and all(math.isfinite(v) and v > 0 for v in model.scale)
                and all(math.isfinite(v) for t in model.targets for v in model.coef[t])
                and isinstance(model.sessions, list)
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"not a cost model: {exc}") from None
        if not ok:
            raise ValueError("not a cost model: inconsistent coefficients")
        if model.correction:
            try:
                model._booster = load_booster(model.correction)
            except Exception as exc:  # LightGBM reports a malformed text model as its own error
                raise ValueError(f"not a cost model: its shape correction does not load ({exc})") from None
        return model


def fit_cost_model(rows: Sequence[dict[str, Any]], folds: int = 5, seed: int = 0) -> CostModel:
    """Fit on ``rows`` (``{"features": {...}, "latency_ms", "activation_mb", "weights_mb"}``),
    with held-out accuracy from ``folds``-fold cross-validation."""
    rows = [r for r in rows if _usable(r)]
    if not rows:
        raise ValueError("no usable calibration measurement")
    names = sorted(rows[0]["features"])
    X = np.array([[r["features"][f] for f in names] for r in rows], dtype=float)
    scale = np.where(np.abs(X).max(axis=0) > 0, np.abs(X).max(axis=0), 1.0)
    Xs = X / scale
    targets = (*TARGETS, *(t for t in OPTIONAL_TARGETS if all(_finite(r.get(t)) for r in rows)))
    Y = {t: np.array([r[t] for r in rows], dtype=float) for t in targets}
    W = np.array([r["weights_mb"] for r in rows], dtype=float)
    times = [r.get("measured_at") for r in rows]
    labels = drift.sessions(times)
    cols = {t: target_columns(names, t) for t in targets}
    Y["latency_ms"], factors = drift.level(
        Y["latency_ms"], labels, lambda y: _in_sample(Xs, y, cols["latency_ms"])
    )
    coef, intercept = {}, {}
    for t in targets:
        c, b = _fit_target(Xs, Y[t], cols[t])
        coef[t], intercept[t] = c.tolist(), b
    model = CostModel(names, scale.tolist(), coef, intercept, len(rows))
    model.sessions = drift.describe(labels, times, factors) if len(factors) > 1 else []
    if len(rows) >= 2 * folds:
        G = gene_matrix(rows)
        shape = None if G is None else shape_inputs(G, X)
        model.accuracy, corrected = _cross_validate(Xs, Y, W, cols, folds, seed, shape)
        # keep the shape correction only where it lowers the held-out error
        if corrected is not None and corrected["median_ape"] < model.accuracy["latency_ms"]["median_ape"]:
            linear = Xs @ np.asarray(coef["latency_ms"]) + intercept["latency_ms"]
            booster = fit_correction(shape, Y["latency_ms"], linear)
            model.correction, model.n_genes = booster.model_to_string(), G.shape[1]
            model._booster = booster
            model.accuracy["latency_ms"] = corrected
        if model.generation:  # its latency is the decode time per token
            model.accuracy["decode_ms_per_token"] = model.accuracy["latency_ms"]
    return model


def target_columns(names: Sequence[str], target: str) -> np.ndarray:
    """The columns ``target`` is fitted on: the features named for it (``"<target>:..."``,
    a backend's, e.g. ``prefill_ms:attention_hd64``) and the unprefixed ones (every
    target's). A feature of another target's work left out of the fit cannot take a weight
    from a few dozen noisy rows that the physics does not give it."""
    own = [i for i, n in enumerate(names) if ":" not in n or n.split(":", 1)[0] == target]
    return np.array(own, dtype=int)


def _fit_target(Xs: np.ndarray, y: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`_fit_one` on the columns ``cols``, its weights put back among all the features
    (0 for the others), so a model keeps one coefficient list per target."""
    c, b = _fit_one(Xs[:, cols], y)
    full = np.zeros(Xs.shape[1])
    full[cols] = c
    return full, b


def _in_sample(Xs: np.ndarray, y: np.ndarray, cols: np.ndarray) -> np.ndarray:
    c, b = _fit_target(Xs, y, cols)
    return Xs @ c + b


def _cross_validate(
    Xs: np.ndarray,
    Y: dict[str, np.ndarray],
    W: np.ndarray,
    cols: dict[str, np.ndarray],
    folds: int,
    seed: int,
    shape: np.ndarray | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float] | None]:
    """Held-out accuracy of the linear model, and (given the correction's inputs ``shape``)
    the held-out latency accuracy of the linear model times its correction, on the same folds."""
    from sklearn.model_selection import KFold

    held = {t: np.zeros(len(W)) for t in Y}
    corrected = np.zeros(len(W))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(Xs):
        for t in Y:
            c, b = _fit_target(Xs[train], Y[t][train], cols[t])
            held[t][test] = Xs[test] @ c + b
            if t == "latency_ms" and shape is not None:
                booster = fit_correction(shape[train], Y[t][train], Xs[train] @ c + b)
                corrected[test] = np.maximum(held[t][test], 1e-6) * np.exp(booster.predict(shape[test]))
    shaped = None if shape is None else accuracy(corrected, Y["latency_ms"])
    out = {
        "latency_ms": accuracy(np.maximum(held["latency_ms"], 1e-6), Y["latency_ms"]),
        "memory_mb": accuracy(W + np.maximum(held["activation_mb"], 0.0), W + Y["activation_mb"]),
        "activation_mb": accuracy(
            np.maximum(held["activation_mb"], 1e-6), np.maximum(Y["activation_mb"], 1e-6)
        ),
    }
    for t in (t for t in OPTIONAL_TARGETS if t in Y):
        out[t] = accuracy(np.maximum(held[t], 1e-6), Y[t])
    return out, shaped


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _usable(r: dict[str, Any]) -> bool:
    try:
        vals = [float(r[t]) for t in (*TARGETS, "weights_mb")] + [float(v) for v in r["features"].values()]
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return all(math.isfinite(v) for v in vals) and float(r["latency_ms"]) > 0


def make_row(
    key: str, features: dict[str, float], m: Any, genes: Sequence[Any] | None = None
) -> dict[str, Any] | None:
    """A training row from features (and gene values) and a measurement (a Measurement or a
    record dict)."""
    get = m.get if isinstance(m, dict) else lambda k: getattr(m, k, None)
    try:
        row = {"key": key, "features": dict(features)}
        values = floats(genes) if genes else None
        if values is not None:
            row["genes"] = values
        when = drift.measured_at(get("measured_at"))
        if math.isfinite(when):
            row["measured_at"] = when
        row.update({t: float(get(t)) for t in (*TARGETS, "weights_mb")})
        row.update({t: float(get(t)) for t in OPTIONAL_TARGETS if _finite(get(t))})
    except (TypeError, ValueError):
        return None
    return row if _usable(row) else None
