"""The Pareto frontier of a run and the files that show it.

Objectives are all minimised internally: the proxy score enters negated. The frontier is
computed over *every* feasible evaluated architecture (not only the optimiser's last
population), so an architecture found early and later dropped by selection is not lost.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from trainfree.io import atomic_write_bytes, atomic_write_json, atomic_write_text, real_dir
from trainfree.objectives import OBJECTIVES
from trainfree.search.evaluation import Evaluation
from trainfree.spaces.configfile import config_file_payload

#: bookkeeping fields shown after the costs, per architecture (evaluated.csv) and per
#: frontier model
_RECORD_TAIL = (
    "seconds_proxy",
    "seconds_measure",
    "hardware_cached",
    "measured_at",
    "latency_clock",
    "latency_spread",
    "interrupted_share",
    "others_running",
    "under_load",
)
_FRONTIER_TAIL = ("measured_at", "latency_clock", "under_load")


def record_columns() -> tuple[str, ...]:
    """The record fields evaluated.csv shows: the counts (params, flops) with their columns,
    ``costs`` (measured or predicted), the other objectives with theirs, then bookkeeping."""
    objectives = list(OBJECTIVES.values())
    counts = [f for o in objectives if o.is_count for f in (o.field, *o.columns, *o.details)]
    others = [f for o in objectives if not o.is_count for f in (o.field, *o.columns, *o.details)]
    return (*counts, "costs", *others, *_RECORD_TAIL)


def frontier_columns() -> tuple[str, ...]:
    """The record fields a frontier model shows (frontier.json and .csv): the measured and
    other costs first, then the counts."""
    objectives = list(OBJECTIVES.values())
    others = [f for o in objectives if not o.is_count for f in (o.field, *o.columns)]
    counts = [f for o in objectives if o.is_count for f in (o.field, *o.columns)]
    return ("costs", *others, *counts, *_FRONTIER_TAIL)


def objective_matrix(records: Sequence[Evaluation], scores: np.ndarray, costs: Sequence[str]) -> np.ndarray:
    """``[n, 1 + len(costs)]`` minimisation matrix: ``-score`` then each cost (by name)."""
    cols = [-np.asarray(scores, dtype=float)]
    for c in costs:
        field = OBJECTIVES[c].field
        cols.append(np.array([r.value(field) for r in records], dtype=float))
    return np.column_stack(cols) if records else np.zeros((0, 1 + len(costs)))


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _shown(key: str, value: Any) -> Any:
    """A record field as the output files show it: a measurement's time in UTC (ISO 8601)."""
    if key == "measured_at" and isinstance(value, (int, float)) and math.isfinite(value):
        return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
    return value


def nondominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (rows with NaN excluded)."""
    ok = np.flatnonzero(np.isfinite(F).all(axis=1))
    if len(ok) == 0:
        return ok
    front = NonDominatedSorting().do(F[ok], only_non_dominated_front=True)
    return np.sort(ok[front])


def hypervolume(F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> float:
    """Hypervolume of ``F``'s points after scaling each objective to [0, 1] between ``ideal``
    and ``nadir``, with reference point 1.1 in every objective (points beyond it add nothing)."""
    if len(F) == 0:
        return 0.0
    span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
    Z = (F - ideal) / span
    Z = Z[(Z < 1.1).all(axis=1)]
    if len(Z) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], 1.1))(Z))


def frontier_rows(
    records: Sequence[Evaluation],
    scores: np.ndarray,
    costs: Sequence[str],
    resolution: float = 0.0,
    uncertainty: dict[str, float] | None = None,
) -> tuple[list[int], np.ndarray]:
    """Indices (into ``records``) of the feasible non-dominated architectures, sorted by the
    first cost, and the objective matrix of all records.

    ``resolution`` (a fraction) is how finely the device-measured costs can tell two models
    apart: the front is thinned so that a model is dropped when a kept one scores strictly
    higher and costs at most ``1 + resolution`` times as much in every measured cost (and no
    more in the analytic ones). Two measurements of one model differ by a few percent, so
    without it the frontier fills with near-twins ordered by noise, each of which must be
    measured. ``uncertainty`` (``{cost: fraction}``, the cost model's typical error) widens
    the margin for a record whose costs are predicted: a prediction that beats a measured
    model by less than its own error is not worth a measurement."""
    F = objective_matrix(records, scores, costs)
    feasible = np.array([r.feasible for r in records], dtype=bool)
    idx = [int(i) for i in nondominated(np.where(feasible[:, None], F, np.nan))] if len(F) else []
    if resolution > 0 and len(idx) > 1:
        measured = np.array([OBJECTIVES[c].measured for c in costs])
        slack = np.where(measured, 1.0 + resolution, 1.0)
        widen = np.array([1.0 + (uncertainty or {}).get(c, 0.0) for c in costs])
        rows = {i: slack * widen if records[i].predicted else slack for i in idx}
        idx = _coarsen(F, idx, rows)
    idx.sort(key=lambda i: (F[i, 1] if F.shape[1] > 1 else 0.0, F[i, 0]))
    return idx, F


def _coarsen(F: np.ndarray, front: list[int], slack: dict[int, np.ndarray]) -> list[int]:
    """``front`` thinned: in order of score, best first, a member ``i`` is kept unless a
    member already kept (so one scoring higher) costs at most ``slack[i]`` times as much.
    Every member dropped has a kept one that is better and not measurably dearer; dropping
    only against kept members keeps the frontier spread over its whole range (dropping
    against any member would leave only the dearest of a dense front)."""
    kept: list[int] = []
    for i in sorted(front, key=lambda i: F[i, 0]):  # F[:, 0] is -score: best first
        if not any(F[k, 0] < F[i, 0] and (F[k, 1:] <= F[i, 1:] * slack[i]).all() for k in kept):
            kept.append(i)
    return kept


def evaluated_table(records: Sequence[Evaluation], scores: np.ndarray, proxy: str) -> pd.DataFrame:
    """One row per distinct architecture; ``config`` is the config as compact JSON."""
    columns = record_columns()
    rows = []
    for rec, score in zip(records, scores, strict=True):
        row = {
            "index": rec.index,
            "generation": rec.generation,
            "feasible": rec.feasible,
            "reason": rec.reason or "",
            proxy: score if rec.feasible else None,
        }
        for name, value in (rec.components or {}).items():
            row[f"{proxy}.{name}"] = value
        flat = rec.flat()
        for key in columns:
            if key in flat:
                row[key] = _shown(key, flat[key])
        row["config"] = json.dumps(rec.config, separators=(",", ":"), sort_keys=True)
        rows.append(row)
    return pd.DataFrame(rows)


def write_outputs(
    out: Path,
    space: Any,
    records: Sequence[Evaluation],
    scores: np.ndarray,
    front: Sequence[int],
    proxy: str,
    costs: Sequence[str],
    meta: dict[str, Any],
    quality: Any = None,
) -> list[dict[str, Any]]:
    """Write ``evaluated.csv``, ``frontier.csv``/``.json``, ``frontier.png`` and one config
    JSON per frontier model (``front``: indices into ``records``) under ``configs/``, every
    file atomically. Returns the frontier models as written to ``frontier.json``."""
    table = evaluated_table(records, scores, proxy)
    atomic_write_text(out / "evaluated.csv", table.to_csv(index=False))
    configs_dir = real_dir(out / "configs")
    models = frontier_models(records, scores, front, proxy, quality)
    for m in models:
        payload = config_file_payload(space, space.config_from_dict(m["config"]))
        atomic_write_json(configs_dir / Path(m["config_file"]).name, payload)
    keep = {Path(m["config_file"]).name for m in models}
    for stale in configs_dir.glob("frontier_*.json"):
        if stale.name not in keep:
            stale.unlink()
    atomic_write_json(out / "frontier.json", {**meta, "objectives": [proxy, *costs], "models": models})
    flat = pd.DataFrame([flat_row(m) for m in models])
    atomic_write_text(out / "frontier.csv", flat.to_csv(index=False))
    references = meta.get("references") or []
    if references:
        atomic_write_text(out / "references.csv", pd.DataFrame(references).to_csv(index=False))
    plot_frontier(
        out / "frontier.png", records, scores, proxy, costs, front, meta.get("title", ""), references
    )
    return models


def frontier_models(
    records: Sequence[Evaluation],
    scores: np.ndarray,
    front: Sequence[int],
    proxy: str,
    quality: Any = None,
) -> list[dict[str, Any]]:
    """The frontier models (``front``: indices into ``records``) as ``frontier.json`` holds
    them, each naming its config file under ``configs/``; ``quality`` (a
    :class:`trainfree.quality.QualityFit`) adds each model's ``predicted`` quality."""
    columns = frontier_columns()
    models = []
    for rank, i in enumerate(front):
        rec = records[i]
        flat = rec.flat()
        name = f"frontier_{rank:03d}_arch{rec.index:05d}.json"
        predicted = quality.fields(float(scores[i])) if quality is not None else None
        models.append(
            {
                "rank": rank,
                "index": rec.index,
                "config_file": f"configs/{name}",
                proxy: float(scores[i]),
                **({"predicted": predicted} if predicted else {}),
                **{k: _shown(k, flat[k]) for k in columns if k in flat},
                "config": rec.config,
            }
        )
    return models


def flat_row(m: dict[str, Any]) -> dict[str, Any]:
    """A frontier model as a ``frontier.csv`` row: the predicted quality as three columns
    named after the target (``predicted_valid_ppl``, ``..._low``, ``..._high``), the config
    as compact JSON."""
    row = {k: v for k, v in m.items() if k not in ("config", "predicted")}
    p = m.get("predicted")
    if isinstance(p, dict):
        name = f"predicted_{p['target']}"
        row.update({name: p["value"], f"{name}_low": p["low"], f"{name}_high": p["high"]})
    row["config"] = json.dumps(m["config"], separators=(",", ":"), sort_keys=True)
    return row


def plot_frontier(
    path: Path,
    records: Sequence[Evaluation],
    scores: np.ndarray,
    proxy: str,
    costs: Sequence[str],
    front: Sequence[int],
    title: str = "",
    references: Sequence[dict[str, Any]] = (),
) -> None:
    """One panel per cost objective: every evaluated architecture (grey; hollow where its costs
    are predicted, not measured), the frontier over *all* objectives (red), and this panel's
    own two-objective front among the measured models (the step line; its points ringed). A
    frontier model below the step line is not dominated overall: it is better on another
    panel's cost. The space's reference models (``search/references.py``) are labelled
    vertical lines at their measured cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(costs) or ["params"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    for ax, cost in zip(axes[0], panels, strict=True):
        _panel(ax, records, np.asarray(scores, dtype=float), cost, front)
        _draw_references(ax, references, cost)
        ax.set_ylabel(f"{proxy} (higher is better)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _panel(ax: Any, records: Sequence[Evaluation], s: np.ndarray, cost: str, front: Sequence[int]) -> None:
    """One cost's panel of :func:`plot_frontier`."""
    feasible = np.array([r.feasible for r in records], dtype=bool)
    predicted = np.array([r.predicted for r in records], dtype=bool)
    x = np.array([r.cost(cost) for r in records], dtype=float)
    ok = feasible & np.isfinite(x) & np.isfinite(s)
    meas = ok & ~predicted
    ax.scatter(x[meas], s[meas], s=12, c="0.6", label=f"evaluated, measured ({meas.sum()})")
    if (ok & predicted).any():
        pred = ok & predicted
        label = f"evaluated, costs predicted ({pred.sum()})"
        ax.scatter(x[pred], s[pred], s=12, facecolors="none", edgecolors="0.7", lw=0.6, label=label)
    f = [i for i in front if ok[i]]
    ax.scatter(x[f], s[f], s=28, c="tab:red", label=f"frontier, all objectives ({len(f)})", zorder=3)
    for rank, i in enumerate(front):  # numbered as the rows of frontier.csv and the table
        if ok[i]:
            ax.annotate(
                str(rank),
                (x[i], s[i]),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=6,
                color="tab:red",
            )
    pts = np.flatnonzero(meas)  # over measured models, as the frontier is
    if len(pts):
        two = pts[nondominated(np.column_stack([x[pts], -s[pts]]))]
        two = two[np.argsort(x[two])]
        ax.step(x[two], s[two], where="post", c="tab:red", lw=1, alpha=0.6)
        label = f"front of this panel's 2 objectives ({len(two)})"
        ax.scatter(x[two], s[two], s=70, facecolors="none", edgecolors="tab:red", lw=1, zorder=4, label=label)
    objective = OBJECTIVES[cost]
    ax.set_xlabel(objective.title)
    if objective.is_count and (x[ok] > 0).any():  # log scale needs a positive point
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _draw_references(ax: Any, references: Sequence[dict[str, Any]], cost: str) -> None:
    """A dashed line and the name of each reference model at its cost on this panel."""
    for ref in references:
        x = _num(ref.get(OBJECTIVES[cost].field))
        if not ref.get("measured") or not np.isfinite(x):
            continue
        ax.axvline(x, color="tab:blue", ls="--", lw=0.8, alpha=0.7)
        ax.text(
            x,
            0.98,
            f" {ref['name']}",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="top",
            ha="left",
            fontsize=7,
            color="tab:blue",
        )
