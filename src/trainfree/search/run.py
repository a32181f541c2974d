"""A resumable multi-objective search run: settings, checkpoints and the main loop.

The run directory holds everything needed to continue:

- ``settings.json``: what was asked (space and value sets, proxy, alpha, objectives,
  constraints, budget, hardware settings, seed), so ``--resume`` needs no other argument;
- ``evaluations.jsonl``: every finished evaluation (see :mod:`trainfree.search.evaluate`);
- ``state.pkl``: the optimiser after the last finished generation, its random generator
  included, written atomically after every generation.

A run killed at any moment resumes from the last checkpoint: the optimiser asks for the same
generation again (same generator state), the architectures already evaluated come from
``evaluations.jsonl``, and nothing finished is lost or repeated.
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.problems.static import StaticProblem

from trainfree.errors import ConfigError, TrainfreeError
from trainfree.hardware import HardwareSettings, MeasurementCache
from trainfree.io import atomic_write_json
from trainfree.proxies import get_proxy, list_proxies
from trainfree.proxies.balance import Balance, combine, heuristic_balance, parse_alpha
from trainfree.search.evaluate import COST_OBJECTIVES, EvaluationStore, Evaluator
from trainfree.search.operators import RandomSearch, SpaceProblem, make_nsga2
from trainfree.search.pareto import frontier_rows, hypervolume, objective_matrix, write_outputs
from trainfree.spaces import get_space

STATE_FORMAT = "trainfree-search-state/1"
ALGORITHMS = ("nsga2", "random")
FAILED = 1e12  # objective value given to failed architectures (pymoo needs finite numbers)


class RunDirError(TrainfreeError):
    """The run directory cannot be used as asked (exists already, or has no run to resume)."""


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``"200"`` -> 200 evaluations; ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds of wall time."""
    t = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)", t)
    if m:
        seconds = float(m.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
        if seconds <= 0:
            raise ConfigError("budget", text, "a positive duration")
        return None, seconds
    m = re.fullmatch(r"(\d+)\s*(evals?|evaluations?)?", t)
    if m and int(m.group(1)) > 0:
        return int(m.group(1)), None
    raise ConfigError("budget", text, "a number of evaluations (e.g. 200) or a wall time (e.g. 90s, 10m, 1h)")


@dataclass
class SearchSettings:
    """Everything a run needs, saved as ``settings.json`` in the run directory."""

    space: str
    space_values: dict[str, list[Any]] = field(default_factory=dict)
    proxy: str = "zerolm"
    alpha: str = "heuristic"
    objectives: list[str] = field(default_factory=lambda: ["latency", "memory"])
    hardware: HardwareSettings = field(default_factory=HardwareSettings)
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_params: float | None = None
    budget: str = "4m"
    pop_size: int = 12
    seed: int = 0
    workers: int = 1
    algorithm: str = "nsga2"
    use_cache: bool = True

    def validate(self) -> None:
        if self.proxy not in list_proxies():
            raise ConfigError("proxy", self.proxy, f"a registered proxy ({', '.join(list_proxies())})")
        if not self.objectives:
            raise ConfigError("objectives", self.objectives, f"at least one of {list(COST_OBJECTIVES)}")
        for o in self.objectives:
            if o not in COST_OBJECTIVES:
                raise ConfigError("objectives", o, f"cost objectives from {list(COST_OBJECTIVES)}")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError("objectives", self.objectives, "each objective once")
        strategy = parse_alpha(self.alpha)
        if strategy.kind == "fit":
            raise ConfigError("alpha", self.alpha, "'heuristic' or a number in [0, 1] (fit:K needs labels)")
        parse_budget(self.budget)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError("algorithm", self.algorithm, f"one of {list(ALGORITHMS)}")
        if self.pop_size < 4:
            raise ConfigError("pop_size", self.pop_size, "an integer >= 4")
        if self.workers < 1:
            raise ConfigError("workers", self.workers, "an integer >= 1")
        for name in ("max_latency_ms", "max_memory_mb", "max_params"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(name, value, "a positive number")

    def make_space(self) -> Any:
        return get_space(self.space, **self.space_values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSettings:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                sorted(unknown)[0], data[sorted(unknown)[0]], f"a settings field ({sorted(known)})"
            )
        data = dict(data)
        data["hardware"] = HardwareSettings(**data.get("hardware", {}))
        out = cls(**data)
        out.validate()
        return out


@dataclass
class Progress:
    """What the run reports after every evaluation and generation."""

    generation: int
    evaluations: int
    frontier_size: int
    hypervolume: float
    elapsed: float
    budget_evals: int | None
    budget_seconds: float | None
    done: bool = False
    message: str = ""


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


class SearchRun:
    """One search run bound to its directory. ``SearchRun.create(out, settings)`` starts a new
    one, ``SearchRun.resume(out)`` continues one; ``run()`` goes until the budget is spent."""

    def __init__(self, out: Path, settings: SearchSettings) -> None:
        self.out = Path(out)
        self.settings = settings
        self.space = settings.make_space()
        self.proxy = get_proxy(settings.proxy)
        self.costs = list(settings.objectives)
        self.budget_evals, self.budget_seconds = parse_budget(settings.budget)
        self.store = EvaluationStore(self.out / "evaluations.jsonl")
        self.limits = {
            "max_latency_ms": settings.max_latency_ms,
            "max_memory_mb": settings.max_memory_mb,
            "max_params": settings.max_params,
        }
        cache = MeasurementCache() if settings.use_cache else None
        self.evaluator = Evaluator(
            self.space,
            settings.proxy,
            self.costs,
            settings.hardware,
            self.store,
            constraints=self.limits,
            seed=settings.seed,
            workers=settings.workers,
            cache=cache,
        )
        self.n_constr = 1 + sum(v is not None for v in self.limits.values())
        self.problem = SpaceProblem(self.space, n_obj=1 + len(self.costs), n_constr=self.n_constr)
        self.algorithm: Any = None
        self.generation = 0
        self.elapsed = 0.0
        self.balance: Balance | None = None
        self.norm: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, out: str | Path, settings: SearchSettings) -> SearchRun:
        out = Path(out)
        if (out / "settings.json").exists():
            raise RunDirError(
                f"{out} already holds a search run; continue it with `--resume --out {out}` "
                "or choose another --out"
            )
        settings.validate()
        run = cls(out, settings)
        run._check_input_shape()
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "settings.json", settings.to_dict())
        run._new_algorithm()
        return run

    @classmethod
    def resume(cls, out: str | Path, budget: str | None = None, workers: int | None = None) -> SearchRun:
        out = Path(out)
        path = out / "settings.json"
        if not path.exists():
            raise RunDirError(f"{out} holds no search run to resume (no settings.json)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{path} is not valid JSON ({exc})") from None
        settings = SearchSettings.from_dict(data)
        if budget is not None or workers is not None:
            settings.budget = budget or settings.budget
            settings.workers = workers or settings.workers
            settings.validate()
            atomic_write_json(path, settings.to_dict())
        run = cls(out, settings)
        state_path = out / "state.pkl"
        if state_path.exists():
            with open(state_path, "rb") as fh:
                state = pickle.load(fh)
            if state.get("format") != STATE_FORMAT:
                raise RunDirError(f"{state_path} is not a trainfree search checkpoint")
            run.algorithm = state["algorithm"]
            run.generation = state["generation"]
            run.elapsed = state["elapsed"]
            run.balance = state["balance"]
            run.norm = state["norm"]
        else:  # killed before the first generation finished: same seed, same start
            run._new_algorithm()
        return run

    def _new_algorithm(self) -> None:
        s = self.settings
        if s.algorithm == "nsga2":
            self.algorithm = make_nsga2(self.problem, s.pop_size, s.seed)
        else:
            self.algorithm = RandomSearch(self.problem, s.pop_size, s.seed)

    def _check_input_shape(self) -> None:
        cfg = self.space.sample(np.random.default_rng(0))
        longest = self.space.max_seq_len(cfg)
        if self.settings.hardware.seq_len > longest and self.evaluator.needs_hardware:
            raise ConfigError(
                "seq_len",
                self.settings.hardware.seq_len,
                f"at most {longest}, the positions the space's models have (tgt_len)",
            )

    def _checkpoint(self) -> None:
        state = {
            "format": STATE_FORMAT,
            "algorithm": self.algorithm,
            "generation": self.generation,
            "elapsed": self.elapsed,
            "balance": self.balance,
            "norm": self.norm,
        }
        path = self.out / "state.pkl"
        tmp = path.with_name(".state.pkl.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(state, fh)
        tmp.replace(path)

    # ------------------------------------------------------------------ scores
    def scores(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Proxy score of each record (NaN for infeasible ones). Balanced proxies use the run's
        balance, chosen label-free on the first generation (before that: on what is there)."""
        if not self.proxy.balanced:
            return np.array([r["score"] if r.get("feasible") else math.nan for r in records], dtype=float)
        balance = self.balance or self._pick_balance(records)
        out = np.full(len(records), math.nan)
        for i, r in enumerate(records):
            if r.get("feasible"):
                out[i] = float(combine(r["components"], balance))
        return out

    def _pick_balance(self, records: list[dict[str, Any]]) -> Balance:
        """The ``--alpha`` strategy applied to ``records``' components (no labels involved):
        ``heuristic`` picks aggregation and alpha; a number fixes alpha (aggregation by the
        heuristic, as in ``trainfree bench``)."""
        comps = [r["components"] for r in records if r.get("feasible")]
        strategy = parse_alpha(self.settings.alpha)
        chosen = Balance(0.5, "sum")
        if len(comps) >= 3:
            with contextlib.suppress(ValueError):
                chosen = heuristic_balance({k: np.array([c[k] for c in comps]) for k in comps[0]})
        if strategy.kind == "fixed":
            chosen = Balance(float(strategy.alpha), chosen.aggregate)
        return chosen

    def _choose_balance(self, records: list[dict[str, Any]]) -> None:
        if self.proxy.balanced and self.balance is None:
            self.balance = self._pick_balance(records)

    def _violations(self, rec: dict[str, Any]) -> list[float]:
        """Constraint values (<= 0 satisfied): failure first, then each limit that is set."""
        g = [-1.0 if rec.get("feasible") else 1.0]
        for limit, fld in (
            ("max_latency_ms", "latency_ms"),
            ("max_memory_mb", "memory_mb"),
            ("max_params", "params"),
        ):
            if self.limits[limit] is not None:
                value = rec.get(fld)
                g.append(1.0 if value is None else float(value) / self.limits[limit] - 1.0)
        return g

    def admissible(self, records: list[dict[str, Any]]) -> list[bool]:
        return [all(v <= 0 for v in self._violations(r)) for r in records]

    def frontier(self) -> tuple[list[int], list[dict[str, Any]], np.ndarray]:
        records = sorted(self.store.records.values(), key=lambda r: r["index"])
        scores = self.scores(records)
        ok = self.admissible(records)
        masked = [r if good else {**r, "feasible": False} for r, good in zip(records, ok, strict=True)]
        front, _ = frontier_rows(masked, scores, self.costs)
        return front, masked, scores

    def hypervolume(self, front: list[int], records: list[dict[str, Any]], scores: np.ndarray) -> float:
        """Hypervolume of ``front`` (from :meth:`frontier`), objectives scaled by the first
        generation's range (fixed once known, so that the figure is comparable across
        generations)."""
        if not front:
            return 0.0
        F = objective_matrix([records[i] for i in front], scores[front], self.costs)
        norm = self.norm or (F.min(axis=0), F.max(axis=0))
        return hypervolume(F, *norm)

    # ------------------------------------------------------------------ loop
    def run(self, on_progress: Callable[[Progress], None] | None = None) -> SearchResult:
        start = time.monotonic()
        base = self.elapsed

        def spent() -> float:
            return base + time.monotonic() - start

        def budget_spent() -> bool:
            if self.budget_evals is not None and len(self.store) >= self.budget_evals:
                return True
            return self.budget_seconds is not None and spent() >= self.budget_seconds

        def report(message: str = "", done: bool = False) -> None:
            if on_progress:
                front, records, scores = self.frontier()
                on_progress(
                    Progress(
                        self.generation,
                        len(self.store),
                        len(front),
                        self.hypervolume(front, records, scores),
                        spent(),
                        self.budget_evals,
                        self.budget_seconds,
                        done,
                        message,
                    )
                )

        stopped = "budget spent"
        try:
            while not budget_spent():
                pop = self.algorithm.ask()
                X = pop.get("X").astype(np.int64)
                configs = [self.space.decode(x) for x in X]
                records = self.evaluator.evaluate(
                    configs, self.generation, should_stop=budget_spent, on_record=lambda r: report()
                )
                if any(r is None for r in records):
                    break  # budget spent inside the generation: its evaluations are kept
                self._choose_balance(records)
                scores = self.scores(records)
                F = _objectives(records, scores, self.costs)
                G = np.array([self._violations(r) for r in records], dtype=float)
                if self.norm is None:
                    good = F[(G <= 0).all(axis=1)]
                    if len(good):
                        self.norm = (good.min(axis=0), good.max(axis=0))
                PymooEvaluator().eval(StaticProblem(self.problem, F=F, G=G), pop)
                self.algorithm.tell(infills=pop)
                self.generation += 1
                self.elapsed = spent()
                self._checkpoint()
                self.write_outputs()
                report(f"generation {self.generation} done")
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            self.evaluator.close()
        self.elapsed = max(self.elapsed, spent())
        front_models, hv = self.write_outputs()
        report(stopped, done=True)
        return SearchResult(
            self.out,
            len(self.store),
            self.generation,
            front_models,
            hv,
            spent(),
            self.balance,
            stopped,
        )

    def write_outputs(self) -> tuple[list[dict[str, Any]], float]:
        """Write the run's result files; returns the frontier models and their hypervolume."""
        front, records, scores = self.frontier()
        hv = self.hypervolume(front, records, scores)
        if not records:
            return [], hv
        s = self.settings
        hw = s.hardware
        meta = {
            "space": s.space,
            "proxy": s.proxy,
            "balance": asdict(self.balance) if self.balance else None,
            "hardware": hw.as_dict(),
            "evaluations": len(records),
            "generations": self.generation,
            "hypervolume": hv,
            "title": f"{s.space}: {s.proxy} vs {', '.join(self.costs)} on {hw.name} "
            f"(batch {hw.batch_size}, {hw.seq_len} tokens), {len(records)} architectures",
        }
        return write_outputs(self.out, self.space, records, scores, front, s.proxy, self.costs, meta), hv


def _objectives(records: list[dict[str, Any]], scores: np.ndarray, costs: list[str]) -> np.ndarray:
    """The optimiser's objective matrix; failed architectures get ``FAILED`` everywhere."""
    F = objective_matrix(records, scores, costs)
    feasible = np.array([bool(r.get("feasible")) for r in records], dtype=bool)
    F[~feasible | ~np.isfinite(F).all(axis=1)] = FAILED
    return F
