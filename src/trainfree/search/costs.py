"""Where a search run's device costs (latency, memory) come from.

- ``measured``: every feasible architecture is measured on the device as it is evaluated
  (the reference, and the fallback).
- ``predicted`` (the default): a calibration sample of the space is measured first, a
  :class:`~trainfree.hardware.costmodel.CostModel` is fitted on it, and candidates are then
  evaluated with predicted costs. Every architecture that enters the frontier is measured
  (as it enters, and again at the end until the frontier holds measured models only), and
  each batch of new measurements refits the model. The model is saved in the run directory
  (``predictor.json``, plain data) with its held-out accuracy, and the calibration
  measurements are kept per machine, space, value sets and hardware settings in
  ``$TRAINFREE_CACHE/costmodels``, so the next run on this machine starts searching at once.
  A model below the accuracy bar (``CostModel.trustworthy``) is reported; the run measures
  more of its calibration sample and of the candidates it chooses, but keeps choosing them
  on its predictions: measuring every architecture instead (what it did once) cut a run on
  a busy laptop from thousands of architectures to 64, no more accurately.

Which figure a record holds is never ambiguous: ``measured`` is true only for figures timed
on the device; predicted figures live in the record's ``predicted`` field and the output
tables carry a ``costs`` column (``measured`` or ``predicted``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainfree.hardware.calibration import RowCache, calibration_sample
from trainfree.hardware.costmodel import TARGETS, CostModel, accuracy, fit_cost_model, make_row
from trainfree.io import atomic_write_json, read_json
from trainfree.objectives import OBJECTIVES, measured_fields
from trainfree.search.evaluation import Evaluation

#: calibration size: at least, at most, and the share of a wall-time budget it may take
CALIBRATION_MIN, CALIBRATION_MAX, CALIBRATION_SHARE = 30, 150, 0.15
#: the measured objectives' record fields (as registered when this module was imported)
MEASURED_FIELDS = measured_fields()


def row_of(record: Evaluation) -> dict[str, Any] | None:
    """A training row from a measured record with features (None otherwise)."""
    if not record.measured or record.features is None:
        return None
    return make_row(record.key, record.features, record.flat(), record.genes)


class CostSource:
    """The device-cost side of one run (see the module docstring)."""

    def __init__(
        self, out: Path, space: Any, hardware: Any, mode: str, use_cache: bool, machine: Any = None
    ) -> None:
        self.out, self.space, self.mode = Path(out), space, mode
        # machine: the measuring machine's description (a device's, through Ray); None: this one
        self.rows_cache = RowCache(space, hardware, machine=machine) if use_cache else None
        self.model: CostModel | None = None
        self.trusted = False  # whether the model meets its accuracy bar (loop.py: else measure more)
        self.fields = measured_fields()
        self.live: dict[str, list[tuple[float, float]]] = {t: [] for t in self.fields}
        self.note = ""  # why the run measures although predictions were asked for

    @property
    def predicting(self) -> bool:
        """Whether new candidates are evaluated on predicted costs (else measured): with
        ``--costs predicted``, whenever a model could be fitted, below its bar too."""
        return self.mode == "predicted" and self.model is not None

    def calibration_size(self, budget_seconds: float | None, seconds_per_measure: float) -> int:
        if budget_seconds is None:
            return 60
        n = int(CALIBRATION_SHARE * budget_seconds / max(seconds_per_measure, 1e-3))
        return int(np.clip(n, CALIBRATION_MIN, CALIBRATION_MAX))

    def calibration_configs(self, n: int, seed: int) -> list[Any]:
        return calibration_sample(self.space, n, seed)

    def cached_rows(self) -> list[dict[str, Any]]:
        return self.rows_cache.load() if self.rows_cache else []

    def fit(
        self, records: Sequence[Evaluation], extra_rows: Sequence[dict[str, Any]] = ()
    ) -> CostModel | None:
        """(Re)fit on every measured record of the run plus ``extra_rows``; a model below the
        accuracy bar switches the run to measuring (``note`` says why)."""
        rows = {r["key"]: r for r in extra_rows}
        rows.update({r["key"]: r for r in (row_of(rec) for rec in records) if r is not None})
        try:
            model = fit_cost_model(list(rows.values()))
        except ValueError as exc:
            self.note = f"no cost model: {exc}; measuring every architecture"
            self.trusted = False
            return None
        ok, why = model.trustworthy()
        self.model, self.trusted = model, ok
        self.note = (
            ""
            if ok
            else (
                f"cost model below its accuracy bar ({why}): the search still chooses candidates "
                "on its predictions, and measures more of them"
            )
        )
        if self.rows_cache:
            self.rows_cache.save(list(rows.values()))
        self.save()
        return model

    def predict(self, records: Sequence[Evaluation]) -> dict[str, np.ndarray]:
        assert self.model is not None
        return self.model.predict(
            [r.features for r in records],
            [r.weights_mb for r in records],
            [r.genes for r in records],
        )

    def values(self, records: Sequence[Evaluation]) -> dict[str, np.ndarray]:
        """Each measured cost of each record: the measurement where there is one, else the
        current model's prediction (NaN where neither)."""
        n = len(records)
        out = {f: np.full(n, math.nan) for f in self.fields}
        todo = [i for i, r in enumerate(records) if not r.measured and r.features is not None]
        if todo and self.model is not None:
            pred = self.predict([records[i] for i in todo])
            for f in self.fields:
                out[f][todo] = pred[f]
        for i, r in enumerate(records):
            if r.measured:
                for f in self.fields:
                    out[f][i] = r.value(f)
        return out

    def note_measured(self, before: Sequence[Evaluation], after: Sequence[Evaluation]) -> bool:
        """Record how the predictions for ``before`` compare with their measurements
        (``after``): the live, truly held-out accuracy of the model that searched. Returns
        whether they miss by more than the model's stated error (the median miss of the
        batch beyond the cross-validated 90th percentile, in some cost): the model is
        biased where the search now looks, and needs those measurements."""
        if self.model is None or not before:
            return False
        pred = self.predict(before)
        pairs: dict[str, list[tuple[float, float]]] = {f: [] for f in self.fields}
        for i, rec in enumerate(after):
            if rec.measured:
                for f in self.fields:
                    pair = (float(pred[f][i]), rec.value(f))
                    if math.isfinite(pair[0]) and math.isfinite(pair[1]):  # a forward pass: no decode
                        pairs[f].append(pair)
                        self.live[f].append(pair)
        self.save()
        stated = {o.field: self.uncertainty().get(name, 0.0) for name, o in OBJECTIVES.items()}
        return any(
            v and accuracy(*np.array(v).T)["median_ape"] > stated.get(f, 0.0) for f, v in pairs.items()
        )

    def uncertainty(self) -> dict[str, float]:
        """``{objective: the 90th percentile of the model's absolute relative error}``
        (cross-validated): a prediction must beat a measured model by more than this to be
        worth measuring (``pareto.frontier_rows``). Not the median: among thousands of
        near-equal candidates the frontier picks those whose predictions came out lowest,
        so with a median margin each measured entrant was replaced by the next optimistic
        one (main-job runs ended with 31-46 entrants unmeasured; docs/search.md)."""
        if self.model is None:
            return {}
        acc = self.model.accuracy
        out = {}
        for name, o in OBJECTIVES.items():
            a = acc.get(o.field) if o.measured else None
            if a:
                err = a.get("p90_ape", a.get("median_ape", math.nan))  # older files: the median
                if math.isfinite(err):
                    out[name] = float(err)
        return out

    def live_accuracy(self) -> dict[str, dict[str, float]]:
        return {f: accuracy(*np.array(v).T) for f, v in self.live.items() if len(v) >= 3}

    def save(self) -> None:
        if self.model is None:
            return
        atomic_write_json(
            self.out / "predictor.json",
            {
                "model": self.model.to_dict(),
                "held_out_accuracy": self.model.accuracy,
                "frontier_accuracy": self.live_accuracy(),
                "frontier_pairs": {f: [list(p) for p in v] for f, v in self.live.items()},
                "note": "held_out_accuracy: 5-fold cross-validation on the calibration measurements; "
                "frontier_accuracy: predictions made during the search against the later "
                "measurement of the same frontier models",
            },
        )

    def restore_live(self) -> None:
        """The live accuracy pairs saved by an earlier session of this run."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            pairs = read_json(self.out / "predictor.json")["frontier_pairs"]
            for f in self.fields:
                self.live[f] = [(float(a), float(b)) for a, b in pairs.get(f, [])]


Progress = Callable[[str], None]
__all__ = ["TARGETS", "CostSource", "row_of"]
