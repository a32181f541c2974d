"""Predicted quality in the benchmark's units: a proxy score mapped to what a trained model
would reach, with a prediction interval (docs/search.md, "Predicted quality").

Where a space has a published benchmark (LTS GPT-2 and Transformer-XL: validation perplexity
after LTS's WikiText-103 training recipe; NAS-Bench-BERT: the GLUE score after FlexiBERT's
pre-training and fine-tuning), the proxy score is mapped to the benchmark's target by a
monotone fit (isotonic regression, scikit-learn's, of the target on the score; perplexity on
a log scale), and the interval is a split-conformal one: the fit is made on one half of the
benchmark and the absolute residuals of the other half give the interval's half-width (the
``ceil((n + 1) * level)``-th smallest, so that the interval covers a new architecture's target
with probability at least ``level`` if it is exchangeable with the benchmark's).

Only the published benchmark is fitted on: what a user has too. The fits are made by
``python benchmarks/quality_fit.py --write`` and shipped (:mod:`trainfree.quality_fits`), one
per (space, proxy, balance); a search whose proxy or balance has no shipped fit shows the
proxy score and says why there is no unit. The same script judges the recipe held out (20
random half splits: the recipe run on one half, judged on the other).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LEVEL = 0.9
#: what each benchmark target is, in words, with the training recipe it assumes
TARGETS: dict[str, tuple[str, str, bool]] = {  # target: (label, recipe, log scale)
    "valid_ppl": (
        "validation perplexity",
        "trained with LiteTransformerSearch's WikiText-103 recipe (archai), perplexity on its validation set",
        True,
    ),
    "glue": (
        "GLUE score",
        "pre-trained and fine-tuned with FlexiBERT's recipe (NAS-Bench-BERT), average GLUE dev score",
        False,
    ),
}


@dataclass(frozen=True)
class QualityFit:
    """A monotone map from proxy score to the benchmark target, and its interval."""

    space: str
    proxy: str
    balance: dict[str, Any] | None  # the balanced proxy's alpha/aggregate/beta (None: unbalanced)
    target: str
    benchmark: str
    higher_is_better: bool  # of the target
    x: tuple[float, ...]  # isotonic thresholds: proxy score ...
    y: tuple[float, ...]  # ... and the fitted target (log scale for perplexity)
    halfwidth: float  # conformal half-width, on the fitted scale
    level: float = LEVEL
    n_fit: int = 0
    n_calibration: int = 0
    seed: int = 0  # the proxy's seed when the benchmark was scored
    judged: dict[str, float] = field(default_factory=dict)  # held-out figures (20 splits)

    @property
    def log(self) -> bool:
        return TARGETS.get(self.target, ("", "", False))[2]

    @property
    def label(self) -> str:
        return TARGETS.get(self.target, (self.target, "", False))[0]

    @property
    def recipe(self) -> str:
        return TARGETS.get(self.target, ("", self.target, False))[1]

    def predict(self, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(value, low, high)`` per score, in the target's units (NaN for a NaN score)."""
        s = np.asarray(scores, dtype=float)
        f = np.interp(s, self.x, self.y)
        f = np.where(np.isfinite(s), f, np.nan)
        lo, hi = f - self.halfwidth, f + self.halfwidth
        if self.log:
            return np.exp(f), np.exp(lo), np.exp(hi)
        return f, lo, hi

    def fields(self, score: float) -> dict[str, Any] | None:
        """The ``predicted`` entry of a frontier model (None for a non-finite score)."""
        value, low, high = (float(a[0]) for a in self.predict([score]))
        if not math.isfinite(value):
            return None
        return {
            "target": self.target,
            "label": f"{self.label} (predicted)",
            "value": value,
            "low": low,
            "high": high,
            "level": self.level,
            "outside_benchmark": bool(score < self.x[0] or score > self.x[-1]),
        }

    def note(self) -> str:
        j = self.judged
        held = (
            f"; held out over {j['splits']:.0f} half splits of the benchmark: median |error| "
            f"{j['median_abs_error']:.3g}, interval coverage {100 * j['coverage']:.0f}% "
            f"(nominal {100 * self.level:.0f}%)"
            if j
            else ""
        )
        return (
            f"predicted quality: {self.label} of the model {self.recipe}, predicted from {self.proxy} "
            f"by an isotonic fit on {self.n_fit} architectures of {self.benchmark} with a split-conformal "
            f"{100 * self.level:.0f}% interval from {self.n_calibration} others (the published benchmark "
            f"only){held}. A score beyond the benchmark's range (marked *) is predicted as the range's end."
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityFit:
        d = dict(d)
        d["x"], d["y"] = tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"])
        return cls(**d)


def _isotonic(x: np.ndarray, y: np.ndarray, increasing: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x, y)
    return np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)


def conformal_halfwidth(residuals: np.ndarray, level: float = LEVEL) -> float:
    """The split-conformal half-width: the ``ceil((n + 1) * level)``-th smallest absolute
    residual (infinite when there are too few residuals for the level)."""
    r = np.sort(np.abs(np.asarray(residuals, float)))
    k = math.ceil((len(r) + 1) * level)
    return float(r[k - 1]) if 0 < k <= len(r) else math.inf


def fit_quality(
    scores: np.ndarray,
    truth: np.ndarray,
    *,
    target: str,
    higher_is_better: bool,
    rng: np.random.Generator,
    level: float = LEVEL,
    **meta: Any,
) -> QualityFit:
    """The recipe on one labelled set: isotonic fit on a random half, the conformal
    half-width from the residuals of the other half. ``meta``: the remaining fields."""
    s, t = np.asarray(scores, float), np.asarray(truth, float)
    ok = np.flatnonzero(np.isfinite(s) & np.isfinite(t) & ((t > 0) | (not TARGETS[target][2])))
    if len(ok) < 10:
        raise ValueError(f"{len(ok)} usable architectures: too few to fit and calibrate")
    y = np.log(t) if TARGETS[target][2] else t
    order = rng.permutation(ok)
    fit, cal = order[: len(order) // 2], order[len(order) // 2 :]
    # a better proxy predicts a better model: the target rises with the score if it is
    # higher-is-better, and falls (perplexity) if not
    xs, ys = _isotonic(s[fit], y[fit], increasing=higher_is_better)
    residuals = y[cal] - np.interp(s[cal], xs, ys)
    return QualityFit(
        target=target,
        higher_is_better=higher_is_better,
        x=tuple(xs.tolist()),
        y=tuple(ys.tolist()),
        halfwidth=conformal_halfwidth(residuals, level),
        level=level,
        n_fit=len(fit),
        n_calibration=len(cal),
        **meta,
    )


def judge(
    scores_for: Any,
    truth: np.ndarray,
    *,
    target: str,
    higher_is_better: bool,
    splits: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """The recipe judged held out: ``splits`` random half splits; on each, the recipe is run
    on one half (``scores_for(idx)`` gives the scores of every architecture when only ``idx``
    may be looked at, so a balance can be refitted there) and judged on the other: median
    absolute error in the target's units, and the share inside the interval."""
    t = np.asarray(truth, float)
    rng = np.random.default_rng(seed)
    errors, cover = [], []
    for _ in range(splits):
        order = rng.permutation(len(t))
        seen, held = order[: len(t) // 2], order[len(t) // 2 :]
        s = np.asarray(scores_for(seen), float)
        q = fit_quality(s[seen], t[seen], target=target, higher_is_better=higher_is_better, rng=rng,
                        space="", proxy="", balance=None, benchmark="")
        value, low, high = q.predict(s[held])
        ok = np.isfinite(value) & np.isfinite(t[held])
        errors.append(float(np.median(np.abs(value[ok] - t[held][ok]))))
        cover.append(float(np.mean((low[ok] <= t[held][ok]) & (t[held][ok] <= high[ok]))))
    return {
        "splits": float(splits),
        "median_abs_error": float(np.median(errors)),
        "coverage": float(np.mean(cover)),
        "coverage_min": float(np.min(cover)),
        "coverage_max": float(np.max(cover)),
        "n_held_out": float(len(t) - len(t) // 2),
    }


def shipped_fit(space: str, proxy: str, balance: Any) -> tuple[QualityFit | None, str]:
    """The shipped fit of ``proxy`` (with ``balance``, a :class:`Balance` or None) on
    ``space``'s benchmark, or None and why there is none."""
    from trainfree.quality_fits import FITS

    fits = [QualityFit.from_dict(d) for d in FITS if d["space"] == space]
    if not fits:
        return None, (
            f"predicted quality: none, the {space} space has no published trained benchmark to map "
            "the proxy to a unit; the proxy score only orders architectures"
        )
    same = [f for f in fits if f.proxy == proxy and _same_balance(f.balance, balance)]
    if same:
        return same[0], ""
    known = ", ".join(sorted({f.proxy for f in fits}))
    return None, (
        f"predicted quality: none for {proxy} with this balance (shipped fits on {space}: {known} at "
        "their default balance; `python benchmarks/quality_fit.py` fits others); the proxy score "
        "only orders architectures"
    )


def _same_balance(fitted: Mapping[str, Any] | None, balance: Any) -> bool:
    if fitted is None or balance is None:
        return fitted is None and balance is None
    b = balance if isinstance(balance, Mapping) else asdict(balance)
    return (
        abs(float(fitted["alpha"]) - float(b["alpha"])) < 1e-9
        and fitted["aggregate"] == b["aggregate"]
        and abs(float(fitted.get("beta", 0.0)) - float(b.get("beta", 0.0))) < 1e-9
    )
