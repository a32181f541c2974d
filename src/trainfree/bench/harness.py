"""Score every architecture of a benchmark with a set of proxies and rank-correlate.

One model is built per architecture and shared by every proxy that needs it; the build time
is charged to each of those proxies, so ``seconds_per_arch`` is what a user running that proxy
alone would wait. Each proxy gets its own copy of the freshly built model (copying is not
charged), so no proxy sees weights, gradients or hooks another proxy left behind, and a score
never depends on which other proxies ran: what makes caching it sound.

:func:`run_benchmark` scores through the one proxy runner that the search uses too
(:class:`~trainfree.proxies.runner.ProxyRunner`): parallel worker processes (``workers``),
each (architecture, proxy, settings) score read and written through a
:class:`~trainfree.runtime.score_cache.ScoreCache`, so an interrupted run resumes without
recomputing. A proxy failing on an architecture (an exception, running out of memory, even a
worker process dying) is recorded in ``ProxyRun.errors`` and the proxy is evaluated on the
other architectures.

Balanced proxies (``zerolm``, ``param_mix``) are scored through their sub-module components
and an :class:`~trainfree.proxies.balance.AlphaStrategy`. With ``fit:K`` the balance is fitted
on K random labelled architectures and evaluated on the *other* N - K only, over ``repeats``
random splits; the figures are the mean and standard deviation over the splits.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.bench.balanced import evaluate_balanced
from trainfree.bench.correlation import rank_correlation, tau_iso
from trainfree.bench.loaders import Benchmark
from trainfree.proxies import Proxy, ProxyContext, get_proxy
from trainfree.proxies.balance import AlphaStrategy
from trainfree.proxies.runner import ProxyRunner
from trainfree.runtime.score_cache import ScoreCache


@dataclass
class ProxyRun:
    """Raw scores of one proxy over a benchmark, with timing and its evaluation.

    ``result`` holds at least ``n``, ``spearman``, ``kendall``, their ``_ci`` intervals and
    ``top10_precision``; a balanced proxy adds how its balance was chosen.
    """

    name: str
    scores: np.ndarray
    seconds: np.ndarray
    result: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    components: dict[str, np.ndarray] | None = None  # balanced proxies: sub-module components
    #: fit:K only: each split's (held-out indices, scores), to judge on held-out models only
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def seconds_per_arch(self) -> float:
        return float(np.mean(self.seconds))

    def as_dict(self) -> dict[str, Any]:
        proxy = get_proxy(self.name)
        out = dict(self.result)
        out.update(
            seconds_per_arch=self.seconds_per_arch,
            needs_data=proxy.needs_data,
            needs_grad=proxy.needs_grad,
            n_errors=len(self.errors),
        )
        return out


@dataclass
class BenchmarkScores:
    """What :func:`run_benchmark` did: the evaluated runs and how the scores were obtained.

    ``computed`` and ``cached`` count (architecture, proxy) scores computed in this run and read
    from the cache; ``invalid`` counts cache entries that failed the checks and were recomputed.
    """

    runs: dict[str, ProxyRun]
    wall_seconds: float
    workers: int
    computed: int = 0
    cached: int = 0
    invalid: int = 0
    batch_size: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def default_workers(proxies: Sequence[Proxy], n_tasks: int) -> int:
    """One worker per available CPU (at most 8) when a proxy builds models; in-process (1)
    for analytic proxies only, or when there are fewer than 2 architectures to score."""
    if n_tasks < 2 or not any(p.needs_model for p in proxies):
        return 1
    from trainfree.runtime.workers import cpu_workers

    return max(1, min(cpu_workers(), n_tasks))


def run_benchmark(
    bench: Benchmark,
    proxy_names: Sequence[str],
    seed: int = 0,
    seq_len: int | None = None,
    alpha: AlphaStrategy | None = None,
    repeats: int = 20,
    on_step: Callable[[int], None] | None = None,
    *,
    workers: int | None = 1,
    cache: ScoreCache | None = None,
    batch_size: int | None = None,
    options: dict[str, Any] | None = None,
    executor: Any = None,
) -> BenchmarkScores:
    """Score ``bench`` with the named proxies and evaluate them.

    ``workers``: worker processes (1: in this process; None: :func:`default_workers`).
    ``cache``: read every score from it when present and valid, store every new one.
    ``batch_size`` (default: :class:`ProxyContext`'s, i.e. each proxy's own), ``seq_len``
    (default: the space's) and ``options`` (``ProxyContext.options``) are handed to the proxies
    and are part of the cache key. ``on_step(k)`` is called with the number of architectures done so far.
    """
    t_start = time.perf_counter()
    proxies = [get_proxy(n) for n in dict.fromkeys(proxy_names)]
    batch_size = ProxyContext().batch_size if batch_size is None else int(batch_size)
    options = dict(options or {})
    n = len(bench.entries)
    collected = _Collected.empty([p.name for p in proxies], n, [e.id for e in bench.entries], on_step)
    invalid_before = cache.invalid if cache else 0
    n_workers = default_workers(proxies, n) if workers is None else max(1, int(workers))
    n_workers = min(n_workers, max(1, n))
    settings = {"seed": seed, "seq_len": seq_len, "batch_size": batch_size, "options": options}
    runner = ProxyRunner(bench.space, settings, workers=n_workers, cache=cache, executor=executor)
    try:
        runner.score([e.config for e in bench.entries], [p.name for p in proxies], collected.record)
    finally:
        runner.close()

    truth = np.array([e.ground_truth for e in bench.entries])
    sizes = _sizes(bench)
    strategy = alpha or AlphaStrategy("heuristic")
    runs = {p.name: _evaluate(p, collected, bench, truth, strategy, repeats, seed) for p in proxies}
    for run in runs.values():
        run.result["tau_iso"] = tau_iso(run.scores, truth, sizes, bench.higher_is_better)
    return BenchmarkScores(
        runs=runs,
        wall_seconds=time.perf_counter() - t_start,
        workers=n_workers,
        computed=runner.computed,
        cached=runner.cached,
        invalid=(cache.invalid - invalid_before) if cache else 0,
        batch_size=batch_size,
        settings=settings,
    )


@dataclass
class _Collected:
    """What the runner returned, per proxy and architecture: the raw value (a score, or a
    balanced proxy's components; NaN where it failed), the seconds and the errors by id."""

    ids: list[str]
    raw: dict[str, list[Any]]
    seconds: dict[str, np.ndarray]
    errors: dict[str, dict[str, str]]
    on_step: Callable[[int], None] | None = None
    done: int = 0

    @classmethod
    def empty(
        cls, names: list[str], n: int, ids: list[str], on_step: Callable[[int], None] | None
    ) -> _Collected:
        return cls(
            ids,
            {name: [math.nan] * n for name in names},
            {name: np.zeros(n) for name in names},
            {name: {} for name in names},
            on_step,
        )

    def record(self, i: int, results: dict[str, tuple[Any, float, str | None]]) -> None:
        """The runner's callback: architecture ``i``'s results, one per proxy."""
        for name, (value, secs, error) in results.items():
            self.seconds[name][i] = secs
            if error is not None:
                self.errors[name][self.ids[i]] = error
            else:
                self.raw[name][i] = value
        self.done += 1
        if self.on_step:
            self.on_step(self.done)


def _evaluate(
    p: Proxy,
    collected: _Collected,
    bench: Benchmark,
    truth: np.ndarray,
    alpha: AlphaStrategy,
    repeats: int,
    seed: int,
) -> ProxyRun:
    """One proxy's run, evaluated against ``truth``: a balanced proxy's components through its
    balance (``alpha``; ``fit:K`` over ``repeats`` splits), a plain proxy's scores as they are."""
    seconds, errors = collected.seconds[p.name], collected.errors[p.name]
    if not p.balanced:
        scores = np.array(collected.raw[p.name], dtype=np.float64)
        result = rank_correlation(scores, truth, bench.higher_is_better, seed=seed).as_dict()
        return ProxyRun(p.name, scores, seconds, result, errors)
    comps = _stack_components(collected.raw[p.name])
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    if comps:
        scores, result = evaluate_balanced(
            comps,
            truth,
            bench.higher_is_better,
            alpha,
            repeats,
            seed,
            space=bench.space,
            ids=collected.ids,
            splits=splits,
            proxy=p.name,
        )
    else:  # failed on every architecture
        scores = np.full(len(truth), math.nan)
        result = rank_correlation(scores, truth, bench.higher_is_better, seed=seed).as_dict()
    return ProxyRun(p.name, scores, seconds, result, errors, comps, splits or None)


def _stack_components(rows: list[Any]) -> dict[str, np.ndarray]:
    keys = next((list(r) for r in rows if isinstance(r, dict)), [])
    return {k: np.array([r[k] if isinstance(r, dict) else math.nan for r in rows]) for k in keys}


def _sizes(bench: Benchmark) -> np.ndarray:
    """Total parameter count of each architecture (NaN where the space cannot count it)."""
    out = np.full(len(bench.entries), np.nan)
    for i, e in enumerate(bench.entries):
        with contextlib.suppress(Exception):
            out[i] = float(bench.space.param_counts(e.config).total)
    return out
