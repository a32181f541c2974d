"""A resumable multi-objective search run: opening a run directory and the main loop.

The run directory holds everything needed to continue, as plain data (nothing is unpickled):

- ``settings.json``: what was asked (space and value sets, proxy, alpha, objectives,
  limits, costs, budget, hardware settings, seed), so ``--resume`` needs no other argument;
- ``evaluations.jsonl``: every finished evaluation (:mod:`trainfree.search.evaluator`);
- ``generations.jsonl``: what the optimiser was asked and told (:mod:`trainfree.search.state`);
- ``predictor.json``: the cost model and its accuracy (:mod:`trainfree.search.costs`).

A run killed at any moment resumes where it stopped: the optimiser is rebuilt by replaying its
generations, every evaluation comes from ``evaluations.jsonl``, and nothing finished is lost
or repeated. A finished run opened again (the same command twice) evaluates nothing and
writes nothing: it is reprinted. Only a larger ``--budget`` continues it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError
from trainfree.hardware.settings import get_backend
from trainfree.io import atomic_write_json, make_dir
from trainfree.proxies.balance import Balance
from trainfree.search import state
from trainfree.search.algorithms import Optimiser, make_algorithm
from trainfree.search.core import FAILED, RunCore, SearchProgress
from trainfree.search.loop import Loop
from trainfree.search.pareto import frontier_models, write_outputs
from trainfree.search.run_report import ReportWritten, write_run_report
from trainfree.search.settings import Budget, SearchSettings
from trainfree.search.state import RunDirError
from trainfree.signals import deferred

__all__ = ["FAILED", "SearchProgress", "SearchResult", "SearchRun"]


@dataclass
class SearchResult:
    out: Path
    evaluations: int
    generations: int
    frontier: list[dict[str, Any]]
    hypervolume: float
    elapsed: float
    balance: Balance | None
    stopped: str
    costs: str


class SearchRun(RunCore):
    """One search run bound to its directory; :meth:`open` creates or continues one and
    :meth:`run` goes until the budget is spent."""

    def __init__(self, out: Path, settings: SearchSettings, executor: Any = None) -> None:
        super().__init__(out, settings, executor)
        self.report: ReportWritten | str | None = None  # report.html as written, or why not

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        out: str | Path,
        settings: SearchSettings | None = None,
        budget: str | Budget | None = None,
        workers: int | None = None,
        executor: Any = None,
    ) -> SearchRun:
        """Create the run in ``out`` (``settings`` given, no run there), or continue the one
        there (``settings`` None, or equal to the saved ones: the same command again);
        ``budget``/``workers`` override the saved ones; ``executor``: where proxies and
        measurements run (:mod:`trainfree.executors`; None: here). Everything is checked before
        anything is written, and the folder is locked against a second process."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise RunDirError(f"--out {out} is a file, not a run directory")
        saved = state.read_settings(out)
        if saved is None and settings is None:
            raise RunDirError(f"{out} holds no search run to resume (no settings.json)")
        if saved is not None and settings is not None:
            asked = json.loads(json.dumps(settings.to_dict()))
            stored = json.loads(json.dumps(saved.to_dict()))
            differ = sorted(k for k in {**stored, **asked} if stored.get(k) != asked.get(k))
            if differ:
                raise RunDirError(
                    f"{out} already holds a search run with other settings ({', '.join(differ)}); "
                    f"continue it with `trainfree search --resume --out {out}` or choose another --out"
                )
        chosen = saved or settings
        assert chosen is not None
        asked_budget = None if budget is None else Budget.parse(budget)
        raised = saved is not None and asked_budget is not None and asked_budget.larger_than(saved.budget)
        if asked_budget is not None:
            chosen.budget = asked_budget
        if workers is not None:
            chosen.workers = workers
        chosen.validate()
        if saved is None:
            state.check_not_foreign(out)
        run = cls(out, chosen, executor)
        if run.device:  # a device that cannot measure: one line now, not a run of failures
            run.executor.check_device(chosen.hardware.device)
            if run.executor.runs_here:  # its runtime installed here (a remote node says so itself)
                get_backend(chosen.hardware.backend).require()
        make_dir(out)
        run.lock.acquire()  # before anything in the folder is read, cut or cleaned
        try:
            run.load_state()
            run.finished = run.finished and not raised
            for _ in state.clean_temporaries(out):
                pass
            if saved is None or budget is not None or workers is not None:
                atomic_write_json(out / "settings.json", chosen.to_dict())
        except BaseException:
            run.lock.release()
            raise
        return run

    def _new_algorithm(self, pop_size: int) -> Optimiser:
        return make_algorithm(self.settings.algorithm, self.problem, pop_size, self.settings.seed)

    # ------------------------------------------------------------------ the loop
    def run(
        self, on_progress: Callable[[SearchProgress], None] | None = None, started: float | None = None
    ) -> SearchResult:
        """Search until the budget is spent, measure the frontier, write the outputs.
        Ctrl-C stops cleanly (``stopped == "interrupted"``), keeping everything finished. A
        run that finished earlier is only reprinted (``stopped == "finished earlier"``).
        ``started``: the ``time.monotonic()`` at which the command started, so that a
        wall-time budget counts its start-up too (default: now)."""
        if self.finished:
            records = self.view(self.records())
            front, masked, scores = self.frontier(measured_only=True, viewed=records)
            models = frontier_models(masked, scores, front, self.settings.proxy, self.quality_fit()[0])
            self.load(records)
            hv = self.hypervolume(front, masked, scores) or 0.0
            return self._result(models, hv, "finished earlier")
        loop = Loop(self, on_progress, started, self._new_algorithm, lambda: self.write_outputs(report=False))
        stopped = "budget spent"
        try:
            loop.go()
        except KeyboardInterrupt:
            stopped = "interrupted"
            self.evaluator.close(kill=True)
        finally:
            self.elapsed = max(self.elapsed, loop.clock.spent())
            self.evaluator.close()
        front_models, hv = self._final_outputs(interrupted=stopped == "interrupted")
        loop.report(stopped)
        return self._result(front_models, hv, stopped)

    def _result(self, front_models: list[dict[str, Any]], hv: float, stopped: str) -> SearchResult:
        return SearchResult(
            self.out,
            len(self.store),
            self.generation,
            front_models,
            hv,
            self.elapsed,
            self.balance,
            stopped,
            "predicted" if self.cost_source.predicting else ("measured" if self.device else "analytic"),
        )

    def _final_outputs(self, interrupted: bool) -> tuple[list[dict[str, Any]], float]:
        """:meth:`write_outputs` with Ctrl-C and SIGTERM held until they are written (a stop
        half-way could leave a module half-imported). After a stop in the loop, a failure to
        write them (such a half-imported module) is a warning: everything finished is in
        ``evaluations.jsonl``, and ``--resume`` writes the outputs."""
        try:
            with deferred():
                return self.write_outputs()
        except Exception as exc:
            if not interrupted or isinstance(exc, TrainfreeError):
                raise
            warnings.warn(
                f"the outputs were not written after the stop ({type(exc).__name__}: {exc}); "
                "everything finished is kept and `trainfree search --resume` writes them",
                RuntimeWarning,
                stacklevel=2,
            )
            return [], 0.0

    def write_outputs(self, report: bool = True) -> tuple[list[dict[str, Any]], float]:
        """Write the run's result files; returns the frontier models and their hypervolume.
        The frontier written is over measured architectures only (with device costs).
        ``report``: also ``report.html`` (the search's periodic writes leave it to the end)."""
        records = self.view(self.records())  # evaluated.csv: each architecture as evaluated
        front, masked, scores = self.frontier(measured_only=True, viewed=records)
        hv = self.hypervolume(front, masked, scores) or 0.0
        if not records:
            return [], hv
        s = self.settings
        hw = s.hardware
        meta = {
            "space": s.space,
            "space_values": s.space_values,
            "proxy": s.proxy,
            "balance": asdict(self.balance) if self.balance else None,
            "hardware": hw.as_dict(),
            "limits": self.limits,
            "costs": s.costs if self.device else "analytic",
            "cost_model_note": self.cost_source.note,
            **({"machine_load": self.load(records).as_dict()} if self.device else {}),
            "unmeasured_entrants": self.unmeasured_entrants,
            **({"end_phase": self.end_phase} if self.end_phase else {}),
            "resolution": s.resolution if self.device else 0.0,
            "evaluations": len(records),
            "generations": self.generation,
            "hypervolume": hv,
            "title": f"{s.space}: {s.proxy} vs {', '.join(self.objectives)} on {hw.name} "
            f"(batch {hw.batch_size}, {hw.workload}), {len(records)} architectures",
        }
        if self.reference_rows is None:  # measured once per run (and cached per machine)
            from trainfree.search.references import measure_references

            self.reference_rows = measure_references(self)
        if self.reference_rows:
            meta["references"] = self.reference_rows
        fit, why = self.quality_fit()
        meta["quality"] = {"note": fit.note() if fit else why, **({"fit": fit.to_dict()} if fit else {})}
        models = write_outputs(
            self.out, self.space, records, scores, front, s.proxy, self.objectives, meta, fit
        )
        if report:
            self.report = write_run_report(self.out)
        return models, hv
