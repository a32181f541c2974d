"""The search loop of one run session: calibrate, search, measure the frontier.

1. **Calibrate** (``--costs predicted`` with device costs): measure a space-filling sample
   (sized to a share of the budget; rows cached on this machine from earlier runs count, and
   where all of them are from earlier sessions a few fresh ones are measured, so that the
   model is levelled to the machine's speed now), fit the cost model and print its held-out
   accuracy. Below the accuracy bar, the run measures every architecture instead, and says so.
2. **Search**: each generation the optimiser asks for a population; the new architectures
   get their proxy scores (worker pool) and their costs (predicted, or measured); the
   optimiser is told; the generation is logged. With predicted costs, the architectures that
   entered the frontier are measured right away (a few per generation) and the cost model is
   refitted on them.
3. **Frontier**: when the budget is spent (keeping back the time the frontier's remaining
   measurements need), every frontier model is measured, repeatedly, until the frontier
   holds measured models only. If that leaves a wall-time budget with time to spare (the
   reserve errs long), the search goes on and the frontier is measured again at its end.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.problems.static import StaticProblem

from trainfree.hardware.calibration import fresh_configs
from trainfree.search import state
from trainfree.search.costs import CALIBRATION_SHARE

#: population sizing: generations a budget should allow, and the population's bounds
TARGET_GENERATIONS, POP_MIN, POP_MAX = 30, 12, 100
#: seconds between rewrites of the output files during a run
WRITE_EVERY_S = 15.0
#: measuring frontier entrants during the search: at most this share of the search's time,
#: this many models between refits
REFINE_SHARE, REFINE_BATCH = 0.3, 4
#: after a wall-time budget, the frontier may still be measured for this share of it
FINAL_GRACE = 0.1
#: the time kept for the frontier's last measurements. Measuring a model changes the frontier
#: (a prediction was optimistic, and the models it had pushed out come back), so clearing U
#: unmeasured entrants takes about U / (1 - churn) measurements, where churn is the number of
#: entrants a measurement reveals. The run learns its churn from its own measuring batches
#: (the prior CHURN_PRIOR counting as CHURN_PRIOR_WEIGHT measurements), never below the prior
#: (the end phase churned more than the search's batches showed) nor above CHURN_MAX;
#: RESERVE_SAFETY covers the spread of measuring times (a fixed reserve of twice the
#: frontier's measuring time left 0-12 entrants unmeasured in main-job runs; docs/search.md)
CHURN_PRIOR, CHURN_PRIOR_WEIGHT, CHURN_MAX, RESERVE_SAFETY = 0.75, 8, 0.85, 1.25
#: a frontier measured with at least this share of a wall-time budget left: the search goes on
RESUME_SHARE = 0.05
#: the fewest calibration measurements a wall-time budget stops at (5-fold CV needs some)
CALIBRATION_FLOOR = 16

if TYPE_CHECKING:
    from trainfree.search.run import SearchProgress, SearchRun

#: what ``SearchRun.frontier()`` returns: frontier indices, the viewed records, their scores
_View = tuple[list[int], list[dict[str, Any]], np.ndarray]


def _unmeasured(front: list[int], records: list[dict[str, Any]]) -> list[int]:
    """The frontier members whose device costs are predicted, not measured."""
    return [i for i in front if records[i].get("costs") == "predicted"]


class _Loop:
    def __init__(self, run: SearchRun, on_progress: Callable[[SearchProgress], None] | None) -> None:
        self.run, self.on_progress = run, on_progress
        self.start, self.base = time.monotonic(), run.elapsed
        self.evals_at_start = len(run.store)
        self.exhausted = False  # the optimiser has no new architecture left (a small space)
        self.phase = "search"
        self.last_write = time.monotonic()
        self.search_start = time.monotonic()
        self.refine_seconds = 0.0
        # frontier measurements so far: models measured, net entrants they revealed, and what
        # seconds_to_measure expected of them (their wall time, refits included, is
        # refine_seconds)
        self.refined, self.revealed, self.expected = 0, 0, 0.0
        self.last_reserve = 0.0

    # ------------------------------------------------------------------ clocks
    def spent(self) -> float:
        return self.base + time.monotonic() - self.start

    def rate(self) -> float:
        dt = time.monotonic() - self.start
        return (len(self.run.store) - self.evals_at_start) / dt if dt > 0 else 0.0

    def budget_spent(self, reserve: float = 0.0) -> bool:
        r = self.run
        if self.exhausted or (r.budget_evals is not None and len(r.store) >= r.budget_evals):
            return True
        return r.budget_seconds is not None and self.spent() + reserve >= r.budget_seconds

    def measure_seconds(self) -> float:
        times = self.run.evaluator.measure_seconds
        return float(np.median(times)) if times else 1.5

    def report(self, message: str = "", view: _View | None = None) -> None:
        """Tell the progress callback; ``view``: ``run.frontier()`` when the caller has it."""
        if not self.on_progress:
            return
        from trainfree.search.run import SearchProgress

        r = self.run
        front, records, scores = view or r.frontier()
        measured = sum(1 for i in front if records[i].get("costs", "measured") == "measured")
        self.on_progress(
            SearchProgress(
                r.generation,
                len(r.store),
                len(front),
                measured,
                r.hypervolume(front, records, scores),
                self.spent(),
                r.budget_evals,
                r.budget_seconds,
                self.rate(),
                self.phase,
                message,
            )
        )

    # ------------------------------------------------------------------ phases
    def go(self) -> None:
        r = self.run
        if r.device and r.settings.costs == "predicted":
            self.calibrate()
        pop_size = self.population()
        r.pop_size = pop_size
        r.algorithm = r._new_algorithm(pop_size)
        replayed = state.replay(r.algorithm, r.problem, r.space, r.log)
        r.generation = replayed
        self.search_start = time.monotonic()
        for rounds in itertools.count(1):
            self.phase = "search"
            while not self.budget_spent(self.reserve()):
                self.generation()
            self.phase = "frontier"
            grace = None
            if r.budget_seconds is not None:  # the rest of the budget, and a grace of a tenth of it
                grace = max(0.0, r.budget_seconds - self.spent()) + FINAL_GRACE * r.budget_seconds
            at_stop = {
                "reserve_s": round(self.last_reserve, 1),
                "churn_at_stop": round(self.churn(), 3),
                "overhead_at_stop": round(self.overhead(), 3),
            }
            stopped, refined = self.spent(), self.refined
            self.measure_frontier(seconds=grace)
            if not r.device:
                break
            r.unmeasured_entrants = len(_unmeasured(*r.frontier()[:2]))
            if r.cost.predicting:  # how the end phase went against its reserve (docs/search.md)
                r.end_phase = {
                    **at_stop,
                    "measured": self.refined - refined,
                    "seconds": round(self.spent() - stopped, 1),
                    "churn_at_end": round(self.churn(), 3),
                    "rounds": rounds,
                }
            left = None if r.budget_seconds is None else r.budget_seconds - self.spent()
            short = left is None or left < RESUME_SHARE * r.budget_seconds
            if r.unmeasured_entrants or short or self.exhausted:
                break  # else the frontier was measured early (the reserve errs long): search on
        r.elapsed = self.spent()
        end = {"generation": r.generation, "elapsed": r.elapsed, **self._state()}
        state.append_end(r.out, r.log, end, changed=r.store.writes > 0)

    def calibrate(self) -> None:
        r = self.run
        self.phase = "calibration"
        cost = r.cost
        cached = cost.cached_rows()
        measured = [rec for rec in r.records() if rec.get("measured")]
        per = self.measure_seconds()
        n = r.settings.calibration or cost.calibration_size(r.budget_seconds, per)
        have = len({row["key"] for row in cached} | {rec["key"] for rec in measured})
        if have < n:
            configs = cost.calibration_configs(n, r.settings.seed)
            share = None if r.settings.calibration or r.budget_seconds is None else CALIBRATION_SHARE
            for k in range(0, len(configs), 4):  # small batches: progress, and a kill loses little
                if have >= n:
                    break
                if (
                    share is not None
                    and have >= CALIBRATION_FLOOR
                    and self.spent() >= share * r.budget_seconds
                ):
                    break  # the calibration's share of a wall-time budget is spent
                batch = configs[k : k + 4]
                before = len(r.store)
                r.evaluator.evaluate(batch, generation=-1, measure=True)
                have += len(r.store) - before
                self.report(f"calibration {min(have, n)}/{n}")
        else:
            self.measure_fresh(cached, measured, n)
        cost.fit(r.records(), cached)
        self.report(cost.note or "cost model fitted")

    def measure_fresh(self, cached: list[dict[str, Any]], measured: list[dict[str, Any]], n: int) -> None:
        """A calibration complete from earlier sessions only: measure a few new architectures
        now, to which the model levels the earlier sessions' latencies (``fresh_configs``)."""
        r = self.run
        fresh = fresh_configs(r.space, [*cached, *measured], n, r.settings.seed)
        if fresh:
            r.evaluator.evaluate(fresh, generation=-1, measure=True)
            self.report(f"measured {len(fresh)} models: the cached calibration levelled to this session")

    def population(self) -> int:
        r = self.run
        if r.pop_size:
            return int(r.pop_size)
        if r.budget_evals is not None:
            expected = r.budget_evals
        else:
            per_eval = self._seconds_per_eval()
            expected = max(0.0, (r.budget_seconds or 0.0) * 0.9 - self.spent()) / per_eval
        return int(np.clip(round(expected / TARGET_GENERATIONS / 4) * 4, POP_MIN, POP_MAX))

    def _seconds_per_eval(self) -> float:
        r = self.run
        secs = [rec["seconds_proxy"] for rec in r.records() if rec.get("seconds_proxy") is not None]
        proxy = float(np.median(secs)) if secs else 0.2
        per = proxy / max(1, r.settings.workers) + 0.005
        if r.device and not r.cost.predicting:
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
        if not r.cost.predicting:
            return 0.0
        front, records, _ = r.frontier()
        todo = [records[i].get("latency_ms") for i in _unmeasured(front, records)]
        seconds = float(np.sum(self.seconds_to_measure(todo))) if todo else 0.0
        self.last_reserve = RESERVE_SAFETY * self.overhead() * seconds / (1.0 - self.churn())
        return self.last_reserve

    def seconds_to_measure(self, latencies_ms: list[Any]) -> np.ndarray:
        """Expected seconds to measure models of these (predicted) latencies: a straight line
        through this run's measurements (a measurement is a build plus a fixed number of
        forward passes, so its time grows with the latency), or the median where too few."""
        recs = [
            (rec["latency_ms"], rec["seconds_measure"])
            for rec in self.run.records()
            if rec.get("seconds_measure") and rec.get("latency_ms") and not rec.get("hardware_cached")
        ]
        lat = np.asarray([x if isinstance(x, (int, float)) else np.nan for x in latencies_ms], dtype=float)
        if len(recs) < 5:
            return np.full(len(lat), self.measure_seconds())
        x, y = np.asarray(recs, dtype=float).T
        slope, intercept = np.polyfit(x, y, 1)
        guess = intercept + slope * np.where(np.isfinite(lat), lat, np.nanmedian(x))
        return np.clip(guess, 0.1 * np.median(y), None)

    def generation(self) -> None:
        r = self.run
        pop = r.algorithm.ask()
        if pop is None or len(pop) == 0:  # every architecture it can find is evaluated
            self.exhausted = True
            return
        X = pop.get("X").astype(np.int64)
        configs = [r.space.decode(x) for x in X]
        measure = r.device and not r.cost.predicting
        limit = None if r.budget_evals is None else max(0, r.budget_evals - len(r.store))
        got = r.evaluator.evaluate(configs, r.generation, measure=measure, limit=limit)
        if any(rec is None for rec in got):
            return  # the evaluation budget ends inside this generation: its evaluations are kept
        records = [rec for rec in got if rec is not None]
        if r.proxy.balanced and r.balance is None:
            r.balance = r._pick_balance([*r.records(), *records])
        F, G = r._objectives(records)
        if r.norm is None:
            good = F[(G <= 0).all(axis=1)]
            if len(good):
                r.norm = (good.min(axis=0), good.max(axis=0))
        PymooEvaluator().eval(StaticProblem(r.problem, F=F, G=G), pop)
        r.algorithm.tell(infills=pop)
        keys = [r.space.config_to_json(c) for c in configs]
        r.generation += 1
        r.elapsed = self.spent()
        state.append_log(
            r.out,
            {
                "generation": r.generation - 1,
                "keys": keys,
                "F": F.tolist(),
                "G": G.tolist(),
                "elapsed": r.elapsed,
                **self._state(),
            },
        )
        if r.cost.predicting:  # measure entrants, within a share of the search's time
            search_time = time.monotonic() - self.search_start
            self.measure_frontier(seconds=max(0.0, REFINE_SHARE * search_time - self.refine_seconds))
        if time.monotonic() - self.last_write > WRITE_EVERY_S:
            r.write_outputs()
            self.last_write = time.monotonic()
        self.report(f"generation {r.generation} done")

    def measure_frontier(self, seconds: float | None) -> None:
        """Measure unmeasured frontier models, best score first, a few at a time: for about
        ``seconds`` (None: until the frontier holds measured models only). During the search
        the cost model is refitted after each batch. The end phase refits only when a batch
        misses the predictions by more than the model's stated error: a refit moves the
        predictions of every record, and in main-job runs refits after batches within the
        error let in more new entrants than the measurements did (a batch of 4 could bring
        6-10), so the phase did not end; but a model biased where the search ended (27% too
        fast on narrow deep models in one run) must learn, or every one of them is measured
        (237 in that run; docs/search.md)."""
        r = self.run
        if not r.device:
            return
        t0, view = time.monotonic(), None
        while seconds is None or time.monotonic() - t0 < seconds:
            front, records, scores = view or r.frontier()
            todo = _unmeasured(front, records)
            if not todo:
                return
            todo.sort(key=lambda i: -scores[i])
            batch = todo[:REFINE_BATCH]
            stored = [r.store.records[records[i]["key"]] for i in batch]
            expected = float(np.sum(self.seconds_to_measure([records[i].get("latency_ms") for i in batch])))
            t1 = time.monotonic()
            after = r.evaluator.measure_records(stored)
            biased = r.cost.note_measured(stored, after)
            if self.phase != "frontier" or biased:
                r.cost.fit(r.records(), r.cost.cached_rows())
            view = r.frontier()
            left = len(_unmeasured(*view[:2]))
            self.refined += len(stored)
            self.revealed += left - (len(todo) - len(stored))
            self.expected += expected
            self.refine_seconds += time.monotonic() - t1
            self.report(f"measured {len(stored)} frontier models", view)

    def _state(self) -> dict[str, Any]:
        r = self.run
        return {
            "pop_size": r.pop_size,
            "balance": None if r.balance is None else asdict(r.balance),
            "norm": None if r.norm is None else [list(map(float, r.norm[0])), list(map(float, r.norm[1]))],
        }
