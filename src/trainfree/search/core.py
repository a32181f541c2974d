"""A search run's state and what its records say: the object the loop and the run share.

:class:`RunCore` holds what a run knows (its settings, space, evaluation store, evaluator,
cost source, and the optimiser's state: generation, balance, normalisation, population size)
and derives from its records what the search needs (the viewed records with predicted costs
filled in, the proxy scores, the constraints, the frontier, the hypervolume).
:class:`~trainfree.search.run.SearchRun` adds opening a run directory, running the loop
(:mod:`trainfree.search.loop`, which works on a ``RunCore``) and writing the outputs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from trainfree.errors import ConfigError
from trainfree.executors import default_executor
from trainfree.hardware import MeasurementCache
from trainfree.hardware.load import MachineLoad
from trainfree.objectives import needs_device
from trainfree.proxies import get_proxy
from trainfree.proxies.balance import AlphaStrategy, Balance, choose, combine
from trainfree.proxies.runner import ProxyRunner
from trainfree.runtime.score_cache import ScoreCache
from trainfree.search import schema, state
from trainfree.search.algorithms import Optimiser, SearchProblem
from trainfree.search.costs import CostSource
from trainfree.search.evaluation import Evaluation
from trainfree.search.evaluator import EvaluationStore, Evaluator
from trainfree.search.pareto import frontier_rows, hypervolume, objective_matrix
from trainfree.search.settings import SearchSettings
from trainfree.search.state import RunLock

FAILED = 1e12  # objective value given to failed architectures (pymoo needs finite numbers)
#: population sizing: generations a budget should allow, and the population's bounds
TARGET_GENERATIONS, POP_MIN, POP_MAX = 30, 12, 100
#: a wall-time run that predicts its device costs is bound by measuring, not by scoring: the
#: main job spent 91% of its 4 minutes measuring (80 models, 2.7 s each) and 2.8 s scoring
#: 980 architectures, and got 6-10 generations whatever its population (docs/search.md, a
#: busy machine). Such a run sizes its population to the generations measuring leaves it,
#: up to POP_MAX_MEASURED (a generation of 400 is scored in about 2 s on two cores)
MEASURED_GENERATIONS, POP_MAX_MEASURED = 10, 400

#: what :meth:`RunCore.frontier` returns: frontier indices, the viewed records, their scores
View = tuple[list[int], list[Evaluation], np.ndarray]


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


class RunCore:
    """One run's state (see the module docstring). ``objectives``: the cost objectives'
    names; ``cost_source``: where their measured values come from."""

    def __init__(self, out: Path, settings: SearchSettings, executor: Any = None) -> None:
        self.out = Path(out)
        self.settings = settings
        self.executor = executor or default_executor()  # where proxies and measurements run
        #: the space's reference models as measured here (search/references.py; None: not yet)
        self.reference_rows: list[dict[str, Any]] | None = None
        self.space = settings.make_space()
        self.proxy = get_proxy(settings.proxy)
        self.objectives = list(settings.objectives)
        self.limits = dict(settings.limits)
        self.budget = settings.budget
        self.device = needs_device(self.objectives, self.limits)
        hw = settings.hardware
        machine = self.executor.machine(hw.device)
        self.cost_source = CostSource(self.out, self.space, hw, settings.costs, settings.use_cache, machine)
        runner = ProxyRunner(
            self.space,
            {"seed": settings.seed, "seq_len": hw.seq_len if self.proxy.needs_data else None},
            workers=settings.workers,
            cache=ScoreCache() if settings.use_cache else None,
            executor=executor,
        )
        self.fingerprint = settings.fingerprint()
        self.store = EvaluationStore(  # read by load_state, once the folder is locked
            self.out / "evaluations.jsonl",
            self.fingerprint,
            read=functools.partial(schema.read_record, space=self.space),
            load=False,
        )
        cache = MeasurementCache() if settings.use_cache else None
        self.evaluator = Evaluator(
            self.space, settings.proxy, hw, self.store, runner, cache, settings.seed, self.fingerprint,
            device_costs=self.device, executor=self.executor,
        )  # fmt: skip
        self.n_constr = 1 + len(self.limits)
        self.problem = SearchProblem(self.space, n_obj=1 + len(self.objectives), n_constr=self.n_constr)
        self.log: list[dict[str, Any]] = []  # generations.jsonl, read by load_state
        self.generation = 0
        self.elapsed = 0.0
        self.balance: Balance | None = None
        self.norm: tuple[np.ndarray, ...] | None = None
        self.pop_size: int | None = settings.pop_size
        self.algorithm: Optimiser | None = None
        self.unmeasured_entrants = 0  # predicted frontier models left unmeasured when time ran out
        self.end_phase: dict[str, Any] | None = None  # the frontier's last measurements (loop.py)
        self.finished = False  # the last session ended with its budget spent (load_state)
        self.machine_load: MachineLoad | None = None  # what the measurements say of the machine
        self.load_told = False  # whether the progress display has said it (once)
        self._frontier_memo: tuple[Any, ...] | None = None  # frontier(): its last answer
        self.lock = RunLock(self.out)
        self._check_input_shape()

    def load_state(self) -> None:
        """Read ``evaluations.jsonl`` and ``generations.jsonl`` (with the folder locked: a
        last line cut by a kill is cut from the file), every line checked by its schema."""
        self.store.load()
        fixed = self.settings.pop_size
        check = functools.partial(
            schema.check_log_entry,
            n_obj=1 + len(self.objectives),
            n_constr=self.n_constr,
            pop_range=(fixed, fixed) if fixed else (POP_MIN, max(POP_MAX, POP_MAX_MEASURED)),
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
        hw = self.settings.hardware
        if hw.seq_len > longest and (self.device or self.proxy.needs_data):
            raise ConfigError(
                "seq_len", hw.seq_len, f"at most {longest}, the positions the space's models have"
            )
        if hw.mode == "generate" and hw.context > longest:
            raise ConfigError(
                "context", hw.context, f"at most {longest}, the positions the space's models have"
            )

    # ------------------------------------------------------------------ scores and costs
    def records(self) -> list[Evaluation]:
        return sorted(self.store.records.values(), key=lambda r: r.index)

    def view(self, records: list[Evaluation]) -> list[Evaluation]:
        """``records`` with every measured cost filled in: the measurement, else the cost
        model's prediction (``cost_source`` says which)."""
        if not self.device:
            return records
        values = self.cost_source.values(records)
        out = []
        for i, r in enumerate(records):
            costs = {f: None if math.isnan(arr[i]) else float(arr[i]) for f, arr in values.items()}
            out.append(r.viewed(costs, "measured" if r.measured else "predicted"))
        return out

    def scores(self, records: list[Evaluation]) -> np.ndarray:
        """Proxy score of each record (NaN for infeasible ones), with the run's balance."""
        if not self.proxy.balanced:
            return np.array([_score(r) if r.feasible else math.nan for r in records], dtype=float)
        balance = self.balance or self.pick_balance(records)
        out = np.full(len(records), math.nan)
        for i, r in enumerate(records):
            if r.feasible and r.components is not None:
                out[i] = float(combine(r.components, balance))
        return out

    def pick_balance(self, records: list[Evaluation]) -> Balance:
        """The ``--alpha`` strategy, through the one balance policy (``balance.choose``) that
        ``bench`` uses too; label-free strategies only (the search has no labels)."""
        comps = [r.components for r in records if r.feasible and r.components is not None]
        stacked = {k: np.array([c[k] for c in comps]) for k in comps[0]} if comps else None
        try:
            return choose(self.settings.alpha, stacked, space=self.space, proxy=self.proxy.name)
        except ValueError:  # a strategy that needs a population, with none yet
            return choose(AlphaStrategy("heuristic"), None, space=self.space, proxy=self.proxy.name)

    def violations(self, rec: Evaluation) -> list[float]:
        """Constraint values (<= 0 satisfied): failure first, then each limit."""
        g = [-1.0 if rec.feasible else 1.0]
        for name, limit in self.limits.items():
            value = rec.cost(name)
            g.append(1.0 if math.isnan(value) else value / limit - 1.0)
        return g

    def frontier(self, measured_only: bool = False, viewed: list[Evaluation] | None = None) -> View:
        """Frontier indices into the viewed records, the records, and their scores. With
        ``measured_only``, over the architectures whose device costs were measured (what the
        output files show: a predicted figure never stands as a measured one). ``viewed``:
        ``view(records())`` when the caller has it already (it predicts every record's costs)."""
        # the loop asks again before anything changed (its reserve after a progress report):
        # the last answer stands while the records, the cost model and the balance are the same
        # (the memo holds the model and the balance, so their ids cannot be reused meanwhile)
        model = self.cost_source.model
        token = (self.store.writes, measured_only, id(model), id(self.balance))
        memo = self._frontier_memo
        if viewed is None and memo is not None and memo[0] == token:
            return memo[1]
        records = self.view(self.records()) if viewed is None else viewed
        scores = self.scores(records)
        masked = [
            r
            if all(v <= 0 for v in self.violations(r)) and not (measured_only and r.predicted)
            else _replace_feasible(r)
            for r in records
        ]
        resolution, uncertainty = self.settings.resolution, self.cost_source.uncertainty()
        front, _ = frontier_rows(masked, scores, self.objectives, resolution, uncertainty)
        if viewed is None:
            self._frontier_memo = (token, (front, masked, scores), (model, self.balance))
        return front, masked, scores

    def hypervolume(self, front: list[int], records: list[Evaluation], scores: np.ndarray) -> float | None:
        if self.norm is None:
            return None
        if not front:
            return 0.0
        F = objective_matrix([records[i] for i in front], scores[front], self.objectives)
        return hypervolume(F, *self.norm)

    def objective_values(self, records: list[Evaluation]) -> tuple[np.ndarray, np.ndarray]:
        """What the optimiser is told of ``records``: objectives ``F`` and constraints ``G``."""
        viewed = self.view(records)
        scores = self.scores(viewed)
        F = objective_matrix(viewed, scores, self.objectives)
        feasible = np.array([r.feasible for r in viewed], dtype=bool)
        F[~feasible | ~np.isfinite(F).all(axis=1)] = FAILED
        G = np.array([self.violations(r) for r in viewed], dtype=float).reshape(len(viewed), -1)
        return F, G

    def quality_fit(self) -> tuple[Any, str]:
        """The shipped proxy -> benchmark-target fit of this run's proxy and balance (None
        and why not where there is none: :mod:`trainfree.quality`)."""
        from trainfree.quality import shipped_fit

        balance = None
        if self.proxy.balanced:  # the balance the scores are combined with (as in scores())
            balance = self.balance or self.pick_balance(self.records())
        return shipped_fit(self.settings.space, self.settings.proxy, balance)

    def load(self, records: list[Evaluation]) -> MachineLoad:
        """What the run's measurements say of the machine (kept in ``machine_load``)."""
        self.machine_load = MachineLoad.of([r.flat() for r in records])
        return self.machine_load


def _score(rec: Evaluation) -> float:
    return math.nan if rec.score is None else float(rec.score)


def _replace_feasible(rec: Evaluation) -> Evaluation:
    return replace(rec, feasible=False)
