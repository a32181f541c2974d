"""When a search run's time goes: its clock, its deadline, and how long measuring will take.

A wall-time budget is a deadline that counts from the command's start. What a search may
still start depends on how long its measurements take on this machine *now* (a busy
machine's measurements take two or three times as long), so the estimates follow the
run's latest measurements: :meth:`Schedule.seconds_to_measure` for the next ones,
:meth:`Schedule.fitting` for how many fit before the deadline, and :meth:`Schedule.reserve`
for the time the frontier's last measurements need.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from trainfree.search.core import RunCore
from trainfree.search.evaluation import Evaluation

#: the time kept for the frontier's last measurements. Measuring a model changes the frontier
#: (a prediction was optimistic, and the models it had pushed out come back), so clearing U
#: unmeasured entrants takes about U / (1 - churn) measurements, where churn is the number of
#: entrants a measurement reveals. The run learns its churn from its own measuring batches
#: (the prior CHURN_PRIOR counting as CHURN_PRIOR_WEIGHT measurements), never below the prior
#: (the end phase churned more than the search's batches showed) nor above CHURN_MAX;
#: RESERVE_SAFETY covers the spread of measuring times (a fixed reserve of twice the
#: frontier's measuring time left 0-12 entrants unmeasured in main-job runs; docs/search.md)
CHURN_PRIOR, CHURN_PRIOR_WEIGHT, CHURN_MAX, RESERVE_SAFETY = 0.75, 8, 0.85, 1.25
#: seconds a wall-time budget keeps for writing the outputs at its end, the plot included
OUTPUT_S = 2.0
#: the measurements that say how long the next will take (the machine's load changes)
RECENT = 20


def unmeasured(front: list[int], records: list[Evaluation]) -> list[int]:
    """The frontier members whose device costs are predicted, not measured."""
    return [i for i in front if records[i].predicted]


class Schedule:
    """The clock of one run session and what its measurements say of the time they take."""

    def __init__(self, run: RunCore, started: float | None = None) -> None:
        self.run = run
        # the session's clock starts when the command did (``started``), imports included
        self.start, self.base = min(time.monotonic(), started or math.inf), run.elapsed
        self.evals_at_start = len(run.store)
        self.refine_seconds = 0.0
        # frontier measurements so far: models measured, net entrants they revealed, and what
        # seconds_to_measure expected of them (their wall time, refits included, is
        # refine_seconds)
        self.refined, self.revealed, self.expected = 0, 0, 0.0
        self.last_reserve = 0.0

    def spent(self) -> float:
        return self.base + time.monotonic() - self.start

    def rate(self) -> float:
        dt = time.monotonic() - self.start
        return (len(self.run.store) - self.evals_at_start) / dt if dt > 0 else 0.0

    def budget_spent(self, reserve: float = 0.0) -> bool:
        budget = self.run.budget
        if budget.evaluations is not None and len(self.run.store) >= budget.evaluations:
            return True
        return budget.seconds is not None and self.spent() + reserve + OUTPUT_S >= budget.seconds

    def time_left(self) -> float | None:
        """Seconds of a wall-time budget left for work (the outputs' time kept back); None
        without one."""
        seconds = self.run.budget.seconds
        return None if seconds is None else seconds - OUTPUT_S - self.spent()

    def measure_seconds(self) -> float:
        """Seconds per measurement lately (the median of the last few; 1.5 before any)."""
        times = self.run.evaluator.measure_seconds[-RECENT:]
        return float(np.median(times)) if times else 1.5

    def fitting(self, flops: list[Any], reserve: float = 0.0) -> int:
        """How many of the models of these FLOPs, measured in this order, are expected to end
        before the deadline (less ``reserve``): all without a wall-time budget."""
        left = self.time_left()
        if left is None:
            return len(flops)
        need = np.cumsum(self.seconds_to_measure(flops))
        return int(np.searchsorted(need, left - reserve, side="right"))

    def pick(self, flops: list[Any], most: int, reserve: float = 0.0, safety: float = 1.0) -> list[int]:
        """Up to ``most`` of these models (in their order, best first) whose expected measuring
        times, times ``safety``, add up to no more than what is left before the deadline
        (less ``reserve``): one that does not fit is passed over for the next that does."""
        left = self.time_left()
        need = self.seconds_to_measure(flops) * safety
        chosen, total = [], 0.0
        for i, seconds in enumerate(need):
            if len(chosen) == most:
                break
            if left is None or total + seconds <= left - reserve:
                chosen.append(i)
                total += float(seconds)
        return chosen

    def seconds_per_eval(self) -> float:
        r = self.run
        secs = [rec.seconds_proxy for rec in r.records() if rec.seconds_proxy is not None]
        proxy = float(np.median(secs)) if secs else 0.2
        per = proxy / max(1, r.settings.workers) + 0.005
        if r.device and not r.cost_source.predicting:
            per += self.measure_seconds()
        return per

    def churn(self) -> float:
        """Net frontier entrants revealed per frontier model measured, learned from this run's
        measuring batches (no generation runs inside a batch, so every change is theirs). It
        only ever rises above the prior: the end phase's churn exceeded what the search's
        batches showed in every main-job run we looked at (0.35-0.69 learned by the stop,
        0.59-0.85 by the end), because the search's batches are few and its frontier young."""
        prior = CHURN_PRIOR * CHURN_PRIOR_WEIGHT
        learned = (self.revealed + prior) / (self.refined + CHURN_PRIOR_WEIGHT)
        return float(np.clip(learned, CHURN_PRIOR, CHURN_MAX))

    def overhead(self) -> float:
        """Wall time of the measuring batches over what ``seconds_to_measure`` expected of
        them: refits, the frontier's upkeep, and the line's own error (prior: 10 s as 10 s)."""
        return float(np.clip((self.refine_seconds + 10.0) / (self.expected + 10.0), 0.8, 3.0))

    def reserve(self) -> float:
        """Seconds to keep for measuring the frontier's unmeasured entrants at the end, and
        those their measurements will reveal (see ``CHURN_PRIOR``)."""
        r = self.run
        if not r.cost_source.predicting:
            return 0.0
        front, records, _ = r.frontier()
        todo = [records[i].value("flops") for i in unmeasured(front, records)]
        seconds = float(np.sum(self.seconds_to_measure(todo))) if todo else 0.0
        self.last_reserve = RESERVE_SAFETY * self.overhead() * seconds / (1.0 - self.churn())
        return self.last_reserve

    def seconds_to_measure(self, flops: list[Any]) -> np.ndarray:
        """Expected seconds to measure models of these FLOPs: a straight line through this
        run's latest measurements (a measurement is a build plus a few forward passes, so its
        time grows with the work; the latest, because a machine's load comes and goes), or
        their median where too few. FLOPs, not predicted latencies: they are known before the
        cost model is, for the calibration sample too."""
        recs = [
            (rec.value("flops"), rec.seconds_measure)
            for rec in self.run.records()
            if rec.seconds_measure and rec.value("flops") > 0 and not rec.hardware_cached
        ][-RECENT:]
        f = np.asarray([x if isinstance(x, (int, float)) else np.nan for x in flops], dtype=float)
        if len(recs) < 5:
            return np.full(len(f), self.measure_seconds())
        x, y = np.asarray(recs, dtype=float).T
        slope, intercept = np.polyfit(x, y, 1)
        guess = intercept + slope * np.where(np.isfinite(f), f, np.nanmedian(x))
        return np.clip(guess, 0.1 * np.median(y), None)
