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

import functools
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainfree.errors import ConfigError, TrainfreeError
from trainfree.executors import default_executor
from trainfree.hardware import MeasurementCache
from trainfree.hardware.load import MachineLoad
from trainfree.io import atomic_write_json, make_dir
from trainfree.proxies import get_proxy
from trainfree.proxies.balance import Balance, choose, combine
from trainfree.proxies.runner import ProxyRunner
from trainfree.runtime.score_cache import ScoreCache
from trainfree.search import schema, state
from trainfree.search.algorithms import Optimiser, SearchProblem, make_algorithm
from trainfree.search.costs import CostSource
from trainfree.search.evaluator import EvaluationStore, Evaluator
from trainfree.search.loop import _Loop
from trainfree.search.objectives import OBJECTIVES, needs_device
from trainfree.search.pareto import (
    frontier_models,
    frontier_rows,
    hypervolume,
    objective_matrix,
    write_outputs,
)
from trainfree.search.run_report import ReportWritten, write_run_report
from trainfree.search.settings import SearchSettings, parse_budget
from trainfree.search.state import RunDirError, RunLock
from trainfree.signals import deferred

FAILED = 1e12  # objective value given to failed architectures (pymoo needs finite numbers)


@dataclass
class SearchProgress:
    """What the run reports as it goes. ``hypervolume`` is None until it is comparable: it is
    the volume dominated by the frontier within the box spanned by the first generation's
    feasible objective values (each scaled to [0, 1], reference point 1.1)."""

    generation: int
    evaluations: int
    frontier_size: int
    frontier_measured: int
    hypervolume: float | None
    elapsed: float
    budget_evals: int | None
    budget_seconds: float | None
    evals_per_second: float = 0.0
    phase: str = "search"
    message: str = ""
    notice: str = ""  # a line to print once (a busy machine)


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


class SearchRun:
    """One search run bound to its directory; :meth:`open` creates or continues one and
    :meth:`run` goes until the budget is spent."""

    def __init__(self, out: Path, settings: SearchSettings, executor: Any = None) -> None:
        self.out = Path(out)
        self.settings = settings
        self.executor = executor or default_executor()  # where proxies and measurements run
        #: the space's reference models as measured here (search/references.py; None: not yet)
        self.reference_rows: list[dict[str, Any]] | None = None
        self.space = settings.make_space()
        self.proxy = get_proxy(settings.proxy)
        self.costs = list(settings.objectives)
        self.limits = dict(settings.limits)
        self.budget_evals, self.budget_seconds = parse_budget(settings.budget)
        self.device = needs_device(self.costs, self.limits)
        hw = settings.hardware
        self.cost = CostSource(
            self.out, self.space, hw, settings.costs, settings.use_cache, self.executor.machine(hw.device)
        )
        runner = ProxyRunner(
            self.space,
            {"seed": settings.seed, "seq_len": hw.seq_len if self.proxy.needs_data else None},
            workers=settings.workers,
            cache=ScoreCache() if settings.use_cache else None,
            executor=executor,
        )
        self.fingerprint = settings.fingerprint()
        self.store = EvaluationStore(  # read by _load_state, once the folder is locked
            self.out / "evaluations.jsonl",
            self.fingerprint,
            check=functools.partial(schema.check_record, space=self.space),
            load=False,
        )
        self.evaluator = Evaluator(
            self.space,
            settings.proxy,
            hw,
            self.store,
            runner,
            MeasurementCache() if settings.use_cache else None,
            settings.seed,
            self.fingerprint,
            device_costs=self.device,
            executor=self.executor,
        )
        self.n_constr = 1 + len(self.limits)
        self.problem = SearchProblem(self.space, n_obj=1 + len(self.costs), n_constr=self.n_constr)
        self.log: list[dict[str, Any]] = []  # generations.jsonl, read by _load_state
        self.generation = 0
        self.elapsed = 0.0
        self.balance: Balance | None = None
        self.norm: tuple[np.ndarray, ...] | None = None
        self.pop_size: int | None = settings.pop_size
        self.algorithm: Optimiser | None = None
        self.unmeasured_entrants = 0  # predicted frontier models left unmeasured when time ran out
        self.end_phase: dict[str, Any] | None = None  # the frontier's last measurements (loop.py)
        self.finished = False  # the last session ended with its budget spent (_load_state)
        self.machine_load: MachineLoad | None = None  # what the measurements say of the machine
        self.load_told = False  # whether the progress display has said it (once)
        self._frontier_memo: tuple[Any, ...] | None = None  # frontier(): its last answer
        self.lock = RunLock(self.out)
        self.report: ReportWritten | str | None = None  # report.html as written, or why not
        self._check_input_shape()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        out: str | Path,
        settings: SearchSettings | None = None,
        budget: str | None = None,
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
        raised = saved is not None and budget is not None and _larger(budget, saved.budget)
        if budget is not None:
            chosen.budget = budget
        if workers is not None:
            chosen.workers = workers
        chosen.validate()
        if saved is None:
            state.check_not_foreign(out)
        run = cls(out, chosen, executor)
        if run.device:  # a device that cannot measure: one line now, not a run of failures
            run.executor.check_device(chosen.hardware.device)
            if chosen.hardware.backend == "llamacpp" and run.executor.name == "local":
                from trainfree.gguf.writer import require_llamacpp

                require_llamacpp("--backend llamacpp")
        make_dir(out)
        run.lock.acquire()  # before anything in the folder is read, cut or cleaned
        try:
            run._load_state()
            run.finished = run.finished and not raised
            for _ in state.clean_temporaries(out):
                pass
            if saved is None or budget is not None or workers is not None:
                atomic_write_json(out / "settings.json", chosen.to_dict())
        except BaseException:
            run.lock.release()
            raise
        return run

    def _load_state(self) -> None:
        """Read ``evaluations.jsonl`` and ``generations.jsonl`` (with the folder locked: a
        last line cut by a kill is cut from the file), every line checked by its schema."""
        from trainfree.search.loop import POP_MAX, POP_MIN

        self.store.load()
        fixed = self.settings.pop_size
        check = functools.partial(
            schema.check_log_entry,
            n_obj=1 + len(self.costs),
            n_constr=self.n_constr,
            pop_range=(fixed, fixed) if fixed else (POP_MIN, POP_MAX),
        )
        self.log = state.read_log(self.out, check)
        self.generation = sum(1 for e in self.log if "keys" in e)
        last = self.log[-1] if self.log else {}
        self.elapsed = float(last.get("elapsed", 0.0))
        self.balance = state.saved_balance(last.get("balance"))
        self.norm = tuple(np.array(v, dtype=float) for v in last["norm"]) if last.get("norm") else None
        self.pop_size = last.get("pop_size") or self.settings.pop_size
        self.finished = bool(last.get("finished"))

    def close(self) -> None:
        self.evaluator.close()
        self.lock.release()

    def _check_input_shape(self) -> None:
        cfg = self.space.sample(np.random.default_rng(0))
        longest = self.space.max_seq_len(cfg)
        if self.settings.hardware.seq_len > longest and (self.device or self.proxy.needs_data):
            raise ConfigError(
                "seq_len",
                self.settings.hardware.seq_len,
                f"at most {longest}, the positions the space's models have",
            )
        hw = self.settings.hardware
        if hw.mode == "generate" and hw.context > longest:
            raise ConfigError(
                "context", hw.context, f"at most {longest}, the positions the space's models have"
            )

    def _new_algorithm(self, pop_size: int) -> Optimiser:
        return make_algorithm(self.settings.algorithm, self.problem, pop_size, self.settings.seed)

    # ------------------------------------------------------------------ scores and costs
    def records(self) -> list[dict[str, Any]]:
        return sorted(self.store.records.values(), key=lambda r: r["index"])

    def view(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``records`` with every measured cost filled in: the measurement, else the cost
        model's prediction (``costs`` says which)."""
        if not self.device:
            return records
        values = self.cost.values(records)
        out = []
        for i, r in enumerate(records):
            v = dict(r)
            for f, arr in values.items():
                v[f] = None if math.isnan(arr[i]) else float(arr[i])
            v["costs"] = "measured" if r.get("measured") else "predicted"
            out.append(v)
        return out

    def scores(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Proxy score of each record (NaN for infeasible ones), with the run's balance."""
        if not self.proxy.balanced:
            return np.array([r["score"] if r.get("feasible") else math.nan for r in records], dtype=float)
        balance = self.balance or self._pick_balance(records)
        out = np.full(len(records), math.nan)
        for i, r in enumerate(records):
            if r.get("feasible"):
                out[i] = float(combine(r["components"], balance))
        return out

    def _pick_balance(self, records: list[dict[str, Any]]) -> Balance:
        """The ``--alpha`` strategy, through the one balance policy (``balance.choose``) that
        ``bench`` uses too; label-free strategies only (the search has no labels)."""
        comps = [r["components"] for r in records if r.get("feasible") and "components" in r]
        stacked = {k: np.array([c[k] for c in comps]) for k in comps[0]} if comps else None
        try:
            return choose(str(self.settings.alpha), stacked, space=self.space, proxy=self.proxy.name)
        except ValueError:  # a strategy that needs a population, with none yet
            return choose("heuristic", None, space=self.space, proxy=self.proxy.name)

    def _violations(self, rec: dict[str, Any]) -> list[float]:
        """Constraint values (<= 0 satisfied): failure first, then each limit."""
        g = [-1.0 if rec.get("feasible") else 1.0]
        for name, limit in self.limits.items():
            value = rec.get(OBJECTIVES[name].field)
            g.append(1.0 if value is None else float(value) / limit - 1.0)
        return g

    def frontier(
        self, measured_only: bool = False, viewed: list[dict[str, Any]] | None = None
    ) -> tuple[list[int], list[dict[str, Any]], np.ndarray]:
        """Frontier indices into the viewed records, the records, and their scores. With
        ``measured_only``, over the architectures whose device costs were measured (what the
        output files show: a predicted figure never stands as a measured one). ``viewed``:
        ``view(records())`` when the caller has it already (it predicts every record's costs)."""
        # the loop asks again before anything changed (its reserve after a progress report):
        # the last answer stands while the records, the cost model and the balance are the same
        # (the memo holds the model and the balance, so their ids cannot be reused meanwhile)
        token = (self.store.writes, measured_only, id(self.cost.model), id(self.balance))
        memo = self._frontier_memo
        if viewed is None and memo is not None and memo[0] == token:
            return memo[1]
        records = self.view(self.records()) if viewed is None else viewed
        scores = self.scores(records)
        masked = [
            r
            if all(v <= 0 for v in self._violations(r))
            and not (measured_only and r.get("costs") == "predicted")
            else {**r, "feasible": False}
            for r in records
        ]
        resolution, uncertainty = self.settings.resolution, self.cost.uncertainty()
        front, _ = frontier_rows(masked, scores, self.costs, resolution, uncertainty)
        if viewed is None:
            self._frontier_memo = (token, (front, masked, scores), (self.cost.model, self.balance))
        return front, masked, scores

    def hypervolume(
        self, front: list[int], records: list[dict[str, Any]], scores: np.ndarray
    ) -> float | None:
        if self.norm is None:
            return None
        if not front:
            return 0.0
        F = objective_matrix([records[i] for i in front], scores[front], self.costs)
        return hypervolume(F, *self.norm)

    def _objectives(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        viewed = self.view(records)
        scores = self.scores(viewed)
        F = objective_matrix(viewed, scores, self.costs)
        feasible = np.array([bool(r.get("feasible")) for r in viewed], dtype=bool)
        F[~feasible | ~np.isfinite(F).all(axis=1)] = FAILED
        G = np.array([self._violations(r) for r in viewed], dtype=float).reshape(len(viewed), -1)
        return F, G

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
            self._load(records)
            hv = self.hypervolume(front, masked, scores) or 0.0
            return self._result(models, hv, "finished earlier")
        loop = _Loop(self, on_progress, started)
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
            "predicted" if self.cost.predicting else ("measured" if self.device else "analytic"),
        )

    def quality_fit(self) -> tuple[Any, str]:
        """The shipped proxy -> benchmark-target fit of this run's proxy and balance (None
        and why not where there is none: :mod:`trainfree.quality`)."""
        from trainfree.quality import shipped_fit

        balance = None
        if self.proxy.balanced:  # the balance the scores are combined with (as in scores())
            balance = self.balance or self._pick_balance(self.records())
        return shipped_fit(self.settings.space, self.settings.proxy, balance)

    def _load(self, records: list[dict[str, Any]]) -> MachineLoad:
        self.machine_load = MachineLoad.of(records)
        return self.machine_load

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
            "cost_model_note": self.cost.note,
            **({"machine_load": self._load(records).as_dict()} if self.device else {}),
            "unmeasured_entrants": self.unmeasured_entrants,
            **({"end_phase": self.end_phase} if self.end_phase else {}),
            "resolution": s.resolution if self.device else 0.0,
            "evaluations": len(records),
            "generations": self.generation,
            "hypervolume": hv,
            "title": f"{s.space}: {s.proxy} vs {', '.join(self.costs)} on {hw.name} "
            f"(batch {hw.batch_size}, {hw.workload}), {len(records)} architectures",
        }
        if self.reference_rows is None:  # measured once per run (and cached per machine)
            from trainfree.search.references import measure_references

            self.reference_rows = measure_references(self)
        if self.reference_rows:
            meta["references"] = self.reference_rows
        fit, why = self.quality_fit()
        meta["quality"] = {"note": fit.note() if fit else why, **({"fit": fit.to_dict()} if fit else {})}
        models = write_outputs(self.out, self.space, records, scores, front, s.proxy, self.costs, meta, fit)
        if report:
            self.report = write_run_report(self.out)
        return models, hv


def _larger(budget: str, saved: str) -> bool:
    """Whether ``budget`` gives a finished run more to do than ``saved`` did (another kind of
    budget counts as more)."""
    new, old = parse_budget(budget), parse_budget(saved)
    if (new[0] is None) != (old[0] is None):
        return True
    return (new[0] or 0) > (old[0] or 0) or (new[1] or 0.0) > (old[1] or 0.0)
