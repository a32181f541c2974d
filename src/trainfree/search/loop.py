"""The search loop of one run session: calibrate, search, measure the frontier.

1. **Calibrate** (``--costs predicted`` with device costs): measure a space-filling sample
   (sized to a share of the budget; rows cached on this machine from earlier runs count, and
   where all of them are from earlier sessions a few fresh ones are measured, so that the
   model is levelled to the machine's speed now), fit the cost model and print its held-out
   accuracy. Below the accuracy bar it measures more of the sample (up to a larger share of
   the budget) and, if still below, searches on the predictions all the same but measures a
   larger share of what they choose, and says so: on a busy machine the noise is the
   machine's, and measuring every architecture is slow and no more accurate.
2. **Search**: each generation the optimiser asks for a population; the new architectures
   get their proxy scores (worker pool) and their costs (predicted, or measured); the
   optimiser is told; the generation is logged. With predicted costs, the architectures that
   entered the frontier are measured right away (a few per generation) and the cost model is
   refitted on them.
3. **Frontier**: when the budget is spent (keeping back the time the frontier's remaining
   measurements need), every frontier model is measured, repeatedly, until the frontier
   holds measured models only. If that leaves a wall-time budget with time to spare (the
   reserve errs long), the search goes on and the frontier is measured again at its end.

A wall-time budget is a deadline: no measurement starts that is not expected to end before
it (less the seconds the outputs take to write), and whatever is left unmeasured then stays
out of the written frontier, which holds measured models only.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from trainfree.hardware.calibration import fresh_configs
from trainfree.hardware.load import MachineLoad
from trainfree.search import state
from trainfree.search.core import (
    MEASURED_GENERATIONS,
    POP_MAX,
    POP_MAX_MEASURED,
    POP_MIN,
    TARGET_GENERATIONS,
    RunCore,
    SearchProgress,
    View,
)
from trainfree.search.costs import CALIBRATION_SHARE
from trainfree.search.evaluation import Evaluation
from trainfree.search.references import measure_references
from trainfree.search.schedule import Schedule, unmeasured

__all__ = ["POP_MAX", "POP_MIN", "TARGET_GENERATIONS", "Loop", "population_size"]
#: seconds between rewrites of the output files during a run
WRITE_EVERY_S = 15.0
#: measuring frontier entrants during the search: at most this share of the search's time
#: (the larger one while the cost model is below its accuracy bar), this many models between
#: refits
REFINE_SHARE, REFINE_SHARE_UNTRUSTED, REFINE_BATCH = 0.3, 0.5, 4
#: the calibration may grow to this share of a wall-time budget while below its accuracy bar
CALIBRATION_EXTENDED_SHARE = 0.3
#: seconds between progress reports while models are being measured
REPORT_EVERY_S = 1.0
#: a frontier measured with at least this share of a wall-time budget left: the search goes on
RESUME_SHARE = 0.05
#: the margin on the expected measuring time of an entrant measured in place of a larger one
#: that does not fit (the time of a llama.cpp measurement varies 2x about its estimate)
PASS_OVER_SAFETY = 1.5
#: the share of a wall-time budget the space's reference models may take to measure
REFERENCE_SHARE = 0.2
#: the fewest calibration measurements a wall-time budget stops at (5-fold CV needs some),
#: unless they would take more than this share of it (a short budget on a busy machine)
CALIBRATION_FLOOR, CALIBRATION_CAP = 16, 0.5


def population_size(expected: float, measuring: bool) -> int:
    """Models per generation for ``expected`` evaluations: spread over ``TARGET_GENERATIONS``,
    or, for a wall-time run bound by measuring its predicted frontier, over the
    ``MEASURED_GENERATIONS`` it gets (a multiple of 4, within the bounds)."""
    generations, largest = (
        (MEASURED_GENERATIONS, POP_MAX_MEASURED) if measuring else (TARGET_GENERATIONS, POP_MAX)
    )
    return int(np.clip(round(expected / generations / 4) * 4, POP_MIN, largest))


class Loop:
    """One session of a run's loop (see the module docstring). It works on the run's state
    (``run``), and is given what it needs of the rest: ``new_algorithm(pop_size)``, the
    optimiser; ``write()``, the output files rewritten during the search."""

    def __init__(
        self,
        run: RunCore,
        on_progress: Callable[[SearchProgress], None] | None,
        started: float | None = None,
        new_algorithm: Callable[[int], Any] | None = None,
        write: Callable[[], Any] | None = None,
    ) -> None:
        self.run, self.on_progress = run, on_progress
        self.new_algorithm = new_algorithm
        self.write = write or (lambda: None)
        self.clock = Schedule(run, started)
        self.exhausted = False  # the optimiser has no new architecture left (a small space)
        self.phase = "search"
        self.last_write = time.monotonic()
        self.search_start = time.monotonic()
        self.last_report = 0.0
        run.evaluator.on_measured = self.measured_one

    def measured_one(self) -> None:
        """A measurement finished: the progress line moves while a batch is measured."""
        if time.monotonic() - self.last_report >= REPORT_EVERY_S:
            self.report()

    def report(self, message: str = "", view: View | None = None) -> None:
        """Tell the progress callback; ``view``: ``run.frontier()`` when the caller has it."""
        self.last_report = time.monotonic()
        if not self.on_progress:
            return
        r = self.run
        front, records, scores = view or r.frontier()
        measured = sum(1 for i in front if records[i].cost_source in ("measured", None))
        self.on_progress(
            SearchProgress(
                r.generation,
                len(r.store),
                len(front),
                measured,
                r.hypervolume(front, records, scores),
                self.clock.spent(),
                r.budget.evaluations,
                r.budget.seconds,
                self.clock.rate(),
                self.phase,
                message,
                self.load_notice(),
            )
        )

    def load_notice(self) -> str:
        """Once a run's measurements show a busy machine: the one line that says so."""
        r = self.run
        if r.load_told or not r.device:
            return ""
        r.machine_load = MachineLoad.of([rec.flat() for rec in r.store.records.values()])
        if not r.machine_load.busy:
            return ""
        r.load_told = True
        return r.machine_load.describe(r.settings.hardware.clock)

    # ------------------------------------------------------------------ phases
    def go(self) -> None:
        r = self.run
        if r.device and r.settings.costs == "predicted":  # the cost source's mode
            self.calibrate()
        self.measure_references()
        pop_size = self.population()
        r.pop_size = pop_size
        assert self.new_algorithm is not None, "the loop needs new_algorithm to search"
        r.algorithm = self.new_algorithm(pop_size)
        replayed = state.replay(r.algorithm, r.space, r.log)
        r.generation = replayed
        self.search_start = time.monotonic()
        for rounds in itertools.count(1):
            self.phase = "search"
            while not (self.exhausted or self.clock.budget_spent(self.clock.reserve())):
                self.generation()
            self.phase = "frontier"
            at_stop = {
                "reserve_s": round(self.clock.last_reserve, 1),
                "churn_at_stop": round(self.clock.churn(), 3),
                "overhead_at_stop": round(self.clock.overhead(), 3),
            }
            stopped, refined = self.clock.spent(), self.clock.refined
            self.measure_frontier(seconds=self.clock.time_left())
            if not r.device:
                break
            r.unmeasured_entrants = len(unmeasured(*r.frontier()[:2]))
            if r.cost_source.predicting:  # how the end phase went against its reserve (docs/search.md)
                r.end_phase = {
                    **at_stop,
                    "measured": self.clock.refined - refined,
                    "seconds": round(self.clock.spent() - stopped, 1),
                    "churn_at_end": round(self.clock.churn(), 3),
                    "rounds": rounds,
                }
            left = self.clock.time_left()
            short = left is None or left < RESUME_SHARE * (r.budget.seconds or 0.0)
            if r.unmeasured_entrants or short or self.exhausted:
                break  # else the frontier was measured early (the reserve errs long): search on
        r.elapsed = self.clock.spent()
        r.finished = True
        end = {"generation": r.generation, "elapsed": r.elapsed, "finished": True, **self._state()}
        state.append_end(r.out, r.log, end, changed=r.store.writes > 0)

    def measure_references(self) -> None:
        """The space's reference models, measured now, within ``REFERENCE_SHARE`` of a
        wall-time budget (:func:`~trainfree.search.references.measure_references`: none for a
        space without any, or a run without device costs)."""
        r = self.run
        if r.reference_rows is not None:
            return
        self.phase = "references"
        seconds = r.budget.seconds
        share = None if seconds is None else min(REFERENCE_SHARE * seconds, self.clock.time_left() or 0.0)
        r.reference_rows = measure_references(r, share, self.clock.seconds_to_measure)

    def calibrate(self) -> None:
        r = self.run
        self.phase = "calibration"
        cost = r.cost_source
        cached = cost.cached_rows()
        measured = [rec for rec in r.records() if rec.measured]
        per = self.clock.measure_seconds()
        n = r.settings.calibration or cost.calibration_size(r.budget.seconds, per)
        have = len({row["key"] for row in cached} | {rec.key for rec in measured})
        configs = cost.calibration_configs(n, r.settings.seed)
        if have < n:
            share = None if r.settings.calibration or r.budget.seconds is None else CALIBRATION_SHARE
            have = self.measure_sample(configs, have, n, share)
        else:
            self.measure_fresh(cached, measured, n)
        cost.fit(r.records(), cached)
        if not cost.trusted and r.budget.seconds is not None and not r.settings.calibration:
            # below the bar: more of the sample (a larger one), while the extended share lasts
            more = cost.calibration_configs(2 * n, r.settings.seed)
            while not cost.trusted:
                got = self.measure_sample(more, have, have + 4, CALIBRATION_EXTENDED_SHARE)
                if got <= have:
                    break
                have = got
                cost.fit(r.records(), cached)
        self.report(cost.note or "cost model fitted")

    def measure_sample(self, configs: list[Any], have: int, n: int, share: float | None) -> int:
        """Measure ``configs`` not measured yet, 4 at a time, until ``n`` measurements are had
        or ``share`` of a wall-time budget is spent (past ``CALIBRATION_FLOOR``), or the
        deadline nears; returns how many are had."""
        r = self.run
        todo, k = list(self.run.evaluator.new_configs(configs).values()), 0
        while k < len(todo) and have < n:  # small batches: progress, and a kill loses little
            spent, bar = self.clock.spent(), share if have >= CALIBRATION_FLOOR else CALIBRATION_CAP
            if share is not None and spent >= bar * (r.budget.seconds or 0.0):
                break  # the calibration's share of a wall-time budget is spent
            # one at a time until a few measurements say how long one takes on this machine now
            batch = todo[k : k + (4 if len(r.evaluator.measure_seconds) >= 4 else 1)]
            fits = self.clock.fitting([r.space.flops(c, r.settings.hardware.seq_len) for c in batch])
            if fits == 0:
                break  # the deadline: not one more measurement fits before it
            before = len(r.store)
            r.evaluator.evaluate(batch[:fits], generation=-1, measure=True)
            k += fits
            have += len(r.store) - before
            self.report(f"calibration {min(have, n)}/{n}")
        return have

    def measure_fresh(self, cached: list[dict[str, Any]], measured: list[Evaluation], n: int) -> None:
        """A calibration complete from earlier sessions only: measure a few new architectures
        now, to which the model levels the earlier sessions' latencies (``fresh_configs``)."""
        r = self.run
        fresh = fresh_configs(r.space, [*cached, *(rec.flat() for rec in measured)], n, r.settings.seed)
        if fresh:
            self.measure_sample(fresh, 0, len(fresh), None)
            self.report(f"measured {len(fresh)} models: the cached calibration levelled to this session")

    def population(self) -> int:
        r = self.run
        if r.pop_size:
            return int(r.pop_size)
        if r.budget.evaluations is not None:
            return population_size(r.budget.evaluations, measuring=False)
        per_eval = self.clock.seconds_per_eval()
        expected = max(0.0, (r.budget.seconds or 0.0) * 0.9 - self.clock.spent()) / per_eval
        return population_size(expected, measuring=bool(r.device and r.cost_source.predicting))

    def generation(self) -> None:
        r = self.run
        X = r.algorithm.ask()
        if len(X) == 0:  # every architecture it can find is evaluated
            self.exhausted = True
            return
        configs = [r.space.decode(x) for x in X]
        measure = r.device and not r.cost_source.predicting
        evals = r.budget.evaluations
        limit = None if evals is None else max(0, evals - len(r.store))
        got = r.evaluator.evaluate(configs, r.generation, measure=measure, limit=limit)
        if any(rec is None for rec in got):
            return  # the evaluation budget ends inside this generation: its evaluations are kept
        records = [rec for rec in got if rec is not None]
        if r.proxy.balanced and r.balance is None:
            r.balance = r.pick_balance([*r.records(), *records])
        F, G = r.objective_values(records)
        if r.norm is None:
            good = F[(G <= 0).all(axis=1)]
            if len(good):
                r.norm = (good.min(axis=0), good.max(axis=0))
        r.algorithm.tell(F, G)
        keys = [r.space.config_to_json(c) for c in configs]
        r.generation += 1
        r.elapsed = self.clock.spent()
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
        if r.cost_source.predicting:  # measure entrants, within a share of the search's time
            search_time = time.monotonic() - self.search_start
            share = REFINE_SHARE if r.cost_source.trusted else REFINE_SHARE_UNTRUSTED
            self.measure_frontier(seconds=max(0.0, share * search_time - self.clock.refine_seconds))
        if time.monotonic() - self.last_write > WRITE_EVERY_S:
            self.write()  # report.html (about a second) at the end only
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
        (237 in that run; docs/search.md).

        A wall-time budget's deadline is strict: a batch holds only the models whose expected
        measuring time fits before it (during the search, before the end phase's reserve).
        When not even the best-scored fits (the largest: a 1.4B-parameter model takes over a
        minute in llama.cpp), smaller entrants that fit with a margin are measured instead of
        none: a llama.cpp run once stopped with 74 s left and none of 35 entrants measured."""
        r = self.run
        if not r.device:
            return
        t0, view = time.monotonic(), None
        while seconds is None or time.monotonic() - t0 < seconds:
            front, records, scores = view or r.frontier()
            todo = unmeasured(front, records)
            if not todo:
                return
            todo.sort(key=lambda i: -scores[i])
            flops = [records[i].value("flops") for i in todo]
            keep = self.clock.last_reserve if self.phase == "search" else 0.0
            picked = list(range(self.clock.fitting(flops[:REFINE_BATCH], reserve=keep)))
            if not picked:  # the best-scored do not fit: smaller entrants may, with a margin
                picked = self.clock.pick(flops, REFINE_BATCH, reserve=keep, safety=PASS_OVER_SAFETY)
            if not picked:
                return  # not one more model fits before the deadline
            batch = [todo[j] for j in picked]
            stored = [r.store.records[records[i].key] for i in batch]
            expected = float(np.sum(self.clock.seconds_to_measure([flops[j] for j in picked])))
            t1 = time.monotonic()
            after = r.evaluator.measure_records(stored)
            biased = r.cost_source.note_measured(stored, after)
            if self.phase != "frontier" or biased:
                r.cost_source.fit(r.records(), r.cost_source.cached_rows())
            view = r.frontier()
            left = len(unmeasured(*view[:2]))
            self.clock.refined += len(stored)
            self.clock.revealed += left - (len(todo) - len(stored))
            self.clock.expected += expected
            self.clock.refine_seconds += time.monotonic() - t1
            self.report(f"measured {len(stored)} frontier models", view)

    def _state(self) -> dict[str, Any]:
        r = self.run
        return {
            "pop_size": r.pop_size,
            "balance": None if r.balance is None else asdict(r.balance),
            "norm": None if r.norm is None else [list(map(float, r.norm[0])), list(map(float, r.norm[1]))],
        }
