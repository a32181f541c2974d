"""Judge a proxy the way a search user uses it: picking under a cost budget, and the frontier.

A correlation says how well a proxy orders a whole benchmark; a search user asks something
else: *which model do I get under my budget?* This module answers with the benchmark's ground
truth, in its own units (perplexity, GLUE points), for a cost ``flops``, ``params``,
``latency`` or ``memory``:

- **Selection regret** (:func:`selection_regret`): at each of 10 budgets, the deciles of the
  cost over the benchmark (10%, 20%, ..., 100%), the proxy picks its best-scored architecture
  whose cost is within the budget. The regret is the true quality of the best architecture
  within the budget minus that of the pick (sign-corrected, so it is >= 0 for perplexity and
  GLUE alike), averaged over the budgets. Ties in the proxy's score are broken at random, so
  the figure is the *expected* regret: the mean truth of the tied picks. An architecture the
  proxy failed on (non-finite score) is never picked ahead of a scored one, but it still counts
  as the best one when it is: a failure costs. Architectures without a finite cost or ground
  truth are left out. Decile budgets are the same sets whether the cost is on a log scale or
  not (a monotone transform keeps the order), so "log-FLOPs budgets" and FLOPs budgets agree.
- **Frontier** (:func:`frontier_quality`): the proxy's Pareto frontier against the cost
  (maximal score, minimal cost), its size, how many of the true frontier's models (maximal
  quality, minimal cost) it holds, and the hypervolume of its models' *true* points relative to
  the true frontier's. Hypervolume alone rewards putting everything on the frontier (the cost
  itself as a proxy scores 1.0 with every model on it), so the size always goes with it.
  Positive costs are taken on a log scale; both axes are scaled to [0, 1] over the judged
  architectures with reference point 1.1 (the search's convention,
  :func:`trainfree.search.pareto.hypervolume`).

Everything here is a pure function of arrays (scores, ground truth, costs), except
:func:`benchmark_costs`, which computes the costs of a benchmark's architectures (analytic for
``flops`` and ``params``; measured once per architecture through the hardware cache for
``latency`` and ``memory``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trainfree.errors import ConfigError
from trainfree.objectives import OBJECTIVES, Shape, bench_costs
from trainfree.search.pareto import hypervolume, nondominated

#: the costs ``--frontier`` accepts, and what each one is: the objectives that declare a
#: ``bench_help`` (:mod:`trainfree.objectives`), as registered when this module was imported
COSTS: dict[str, str] = bench_costs()
N_BUDGETS = 10


def check_cost(name: str) -> str:
    """``name`` if it is a known cost, else a one-line :class:`ConfigError`."""
    known = list(bench_costs())
    if name not in known:
        raise ConfigError("frontier", name, f"{', '.join(known[:-1])} or {known[-1]}")
    return name


def decile_budgets(cost: np.ndarray, n_budgets: int = N_BUDGETS) -> np.ndarray:
    """The ``n_budgets`` quantiles 1/n, 2/n, ..., 1 of the finite costs (the last is the max)."""
    c = np.asarray(cost, dtype=np.float64)
    c = c[np.isfinite(c)]
    if len(c) == 0:
        return np.full(n_budgets, math.nan)
    return np.quantile(c, np.arange(1, n_budgets + 1) / n_budgets)


def _goodness(truth: np.ndarray, higher_is_better: bool) -> np.ndarray:
    t = np.asarray(truth, dtype=np.float64)
    return t if higher_is_better else -t


def _usable(scores: np.ndarray, truth: np.ndarray, cost: np.ndarray) -> np.ndarray:
    s, t, c = (np.asarray(x, dtype=np.float64) for x in (scores, truth, cost))
    if not (s.shape == t.shape == c.shape) or s.ndim != 1:
        raise ValueError(f"scores {s.shape}, truth {t.shape} and cost {c.shape} must be 1-D of equal length")
    return np.isfinite(t) & np.isfinite(c)


def selection_regret(
    scores: np.ndarray,
    truth: np.ndarray,
    cost: np.ndarray,
    higher_is_better: bool,
    budgets: np.ndarray | None = None,
    ties: str = "mean",
) -> np.ndarray:
    """Expected regret of the proxy's pick at each budget (default: :func:`decile_budgets`),
    in the ground truth's units, >= 0; NaN at a budget that no architecture meets.

    ``ties="first"`` breaks ties in the score by benchmark order instead of averaging over
    them (what a plain ``argmax`` does; kept to compare with figures measured that way)."""
    if ties not in ("mean", "first"):
        raise ValueError(f"ties must be 'mean' or 'first', not {ties!r}")
    ok = _usable(scores, truth, cost)
    s = np.asarray(scores, dtype=np.float64)[ok]
    s = np.where(np.isfinite(s), s, -np.inf)
    g = _goodness(np.asarray(truth)[ok], higher_is_better)
    c = np.asarray(cost, dtype=np.float64)[ok]
    budgets = decile_budgets(c) if budgets is None else np.asarray(budgets, dtype=np.float64)
    out = np.full(len(budgets), math.nan)
    for i, b in enumerate(budgets):
        within = c <= b
        if not within.any():
            continue
        sw, gw = s[within], g[within]
        picked = gw[sw == sw.max()] if ties == "mean" else gw[np.argmax(sw)]
        out[i] = float(gw.max() - np.mean(picked))
    return out


def _objectives(cost: np.ndarray) -> np.ndarray:
    c = np.asarray(cost, dtype=np.float64)
    return np.log(c) if len(c) and (c > 0).all() else c


def frontier(scores: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the architectures on the proxy's frontier: no other has a score at least as
    high and a cost at least as low, one of them strictly (non-finite rows left out)."""
    s, c = np.asarray(scores, dtype=np.float64), np.asarray(cost, dtype=np.float64)
    return nondominated(np.column_stack([-s, c]))


def frontier_quality(
    scores: np.ndarray, truth: np.ndarray, cost: np.ndarray, higher_is_better: bool
) -> dict[str, Any]:
    """``size`` of the proxy's frontier, ``true_size`` of the true one, ``recovered`` (models on
    both) and ``hv_ratio``: hypervolume of the proxy frontier's true points over the true
    frontier's (log cost when positive, both axes scaled to [0, 1], reference 1.1)."""
    ok = _usable(scores, truth, cost)
    s = np.asarray(scores, dtype=np.float64)[ok]
    g = _goodness(np.asarray(truth)[ok], higher_is_better)
    x = _objectives(np.asarray(cost, dtype=np.float64)[ok])
    mine, true = frontier(s, x), frontier(g, x)
    points = np.column_stack([x, -g])  # both minimised
    if len(points) == 0:
        return {"size": 0, "true_size": 0, "recovered": 0, "hv_ratio": math.nan}
    ideal, nadir = points.min(axis=0), points.max(axis=0)
    hv_true = hypervolume(points[true], ideal, nadir)
    hv_mine = hypervolume(points[mine], ideal, nadir) if len(mine) else 0.0
    return {
        "size": len(mine),
        "true_size": len(true),
        "recovered": len(set(mine.tolist()) & set(true.tolist())),
        "hv_ratio": hv_mine / hv_true if hv_true > 0 else math.nan,
    }


@dataclass(frozen=True)
class Selection:
    """How a proxy's choices fare against one cost. Over held-out splits (``fit:K``), every
    figure is the mean over the splits and ``regret_std`` their standard deviation."""

    cost: str
    n: int  # architectures judged (finite cost and ground truth); per split for fit:K
    regret: float  # mean over the budgets, in the ground truth's units
    regret_per_budget: list[float]
    frontier_size: float
    true_frontier_size: float
    recovered: float
    hv_ratio: float
    regret_std: float | None = None
    splits: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    scores: np.ndarray, truth: np.ndarray, cost: np.ndarray, higher_is_better: bool, cost_name: str
) -> Selection:
    """Selection regret (decile budgets) and frontier quality of one score vector."""
    per_budget = selection_regret(scores, truth, cost, higher_is_better)
    f = frontier_quality(scores, truth, cost, higher_is_better)
    return Selection(
        cost=cost_name,
        n=int(_usable(scores, truth, cost).sum()),
        regret=float(np.nanmean(per_budget)) if np.isfinite(per_budget).any() else math.nan,
        regret_per_budget=[float(r) for r in per_budget],
        frontier_size=f["size"],
        true_frontier_size=f["true_size"],
        recovered=f["recovered"],
        hv_ratio=f["hv_ratio"],
    )


def judge_splits(
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    truth: np.ndarray,
    cost: np.ndarray,
    higher_is_better: bool,
    cost_name: str,
) -> Selection:
    """:func:`judge` on the held-out architectures of each ``(eval_idx, scores)`` split only
    (budgets, best and pick, both frontiers, all within the held-out set), averaged."""
    if not splits:
        raise ValueError("judge_splits needs at least one split")
    each = [
        judge(np.asarray(s)[idx], np.asarray(truth)[idx], np.asarray(cost)[idx], higher_is_better, cost_name)
        for idx, s in splits
    ]
    regrets = np.array([j.regret for j in each])
    return Selection(
        cost=cost_name,
        n=int(np.rint(np.mean([j.n for j in each]))),
        regret=float(np.nanmean(regrets)),
        regret_per_budget=[float(v) for v in np.nanmean([j.regret_per_budget for j in each], axis=0)],
        frontier_size=float(np.mean([j.frontier_size for j in each])),
        true_frontier_size=float(np.mean([j.true_frontier_size for j in each])),
        recovered=float(np.mean([j.recovered for j in each])),
        hv_ratio=float(np.nanmean([j.hv_ratio for j in each])),
        regret_std=float(np.nanstd(regrets)),
        splits=len(each),
    )


def benchmark_costs(
    bench: Any,
    names: Sequence[str],
    hardware: Any = None,
    cache: Any = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each named cost of every architecture of ``bench``, and the failures ``{id: why}``.

    ``flops`` (the ``flops`` proxy's figure: one sequence of the space's maximum length) and
    ``params`` are computed from the config. ``latency`` (ms) and ``memory`` (MB) come from one
    isolated measurement per architecture under ``hardware`` (default
    :class:`~trainfree.hardware.HardwareSettings`), read from / stored in ``cache`` (a
    :class:`~trainfree.hardware.MeasurementCache`; None measures every time). An architecture
    that cannot be measured gets NaN and is named in the failures."""
    objectives = [OBJECTIVES[check_cost(n)] for n in dict.fromkeys(names)]
    space, entries = bench.space, bench.entries
    out = {o.name: np.full(len(entries), math.nan) for o in objectives}
    failures: dict[str, str] = {}
    measured = [o for o in objectives if o.measurement is not None]
    if measured:
        from trainfree.hardware import HardwareSettings, profile_cached

        hardware = hardware or HardwareSettings()
    for i, e in enumerate(entries):
        shape = Shape(seq_len=space.max_seq_len(e.config))  # analytic costs: the longest input
        for o in objectives:
            value = o.analytic_value(space, e.config, shape)
            if value is not None:
                out[o.name][i] = float(value)
        if measured:
            m, _ = profile_cached(space, e.config, hardware, cache)
            if not m.ok:
                failures[e.id] = str(m.error)
            for o in measured if m.ok else ():
                out[o.name][i] = getattr(m, o.measurement)
        if on_step:
            on_step(i + 1)
    return out, failures


def judge_runs(
    runs: dict[str, Any], truth: np.ndarray, costs: dict[str, np.ndarray], higher_is_better: bool
) -> dict[str, dict[str, Selection]]:
    """:func:`judge` every proxy run against every cost, and store the figures in
    ``run.result["selection"][cost]`` (JSON output, report).

    When a run has held-out splits (``fit:K``, ``run.splits``), it is judged on its held-out
    architectures only (:func:`judge_splits`), and so is every other run, on the same splits
    with its own scores: the rows of one table stay comparable."""
    reference = next((run.splits for run in runs.values() if getattr(run, "splits", None)), None)
    out: dict[str, dict[str, Selection]] = {}
    for name, run in runs.items():
        splits = getattr(run, "splits", None) or (
            [(idx, run.scores) for idx, _ in reference] if reference else None
        )
        out[name] = {
            c: (
                judge_splits(splits, truth, cost, higher_is_better, c)
                if splits
                else judge(run.scores, truth, cost, higher_is_better, c)
            )
            for c, cost in costs.items()
        }
        run.result["selection"] = {c: s.as_dict() for c, s in out[name].items()}
    return out


def cells(s: Selection | dict[str, Any]) -> tuple[str, str, str, str]:
    """The figures of one row as text, for the CLI table and report.md: regret (``± sd`` over
    held-out splits), frontier size / judged, recovered / true frontier size, hypervolume."""
    d = s.as_dict() if isinstance(s, Selection) else s

    def num(x: Any, fmt: str) -> str:
        return "nan" if x is None or not math.isfinite(x) else format(x, fmt)

    sd = d.get("regret_std")
    regret = num(d["regret"], ".2f") + (f" ±{num(sd, '.2f')}" if sd is not None else "")
    whole = float(d["frontier_size"]).is_integer() and float(d["true_frontier_size"]).is_integer()
    fmt = ".0f" if whole else ".1f"
    return (
        regret,
        f"{num(d['frontier_size'], fmt)}/{d['n']}",
        f"{num(d['recovered'], fmt)}/{num(d['true_frontier_size'], fmt)}",
        num(d["hv_ratio"], ".3f"),
    )
