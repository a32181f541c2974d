"""Score every architecture of a benchmark with a set of proxies and rank-correlate.

One model is built per architecture and shared by every proxy that needs it; the build time
is charged to each of those proxies, so ``seconds_per_arch`` is what a user running that proxy
alone would wait. Each proxy gets its own copy of the freshly built model (copying is not
charged), so no proxy sees weights, gradients or hooks another proxy left behind, and a score
never depends on which other proxies ran: what makes caching it sound.

:func:`run_benchmark` runs the architectures in parallel worker processes (``workers``) and
reads and writes each (architecture, proxy, settings) score through a
:class:`~trainfree.benchmarks.cache.ScoreCache`, so an interrupted run resumes without
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
import copy
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.benchmarks.balanced import evaluate_balanced
from trainfree.benchmarks.cache import ScoreCache
from trainfree.benchmarks.evaluate import rank_correlation, tau_iso
from trainfree.benchmarks.loaders import Benchmark
from trainfree.proxies import Proxy, ProxyContext, get_proxy
from trainfree.proxies.balance import AlphaStrategy


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


def score_benchmark(
    bench: Benchmark,
    proxy_names: Sequence[str],
    seed: int = 0,
    seq_len: int | None = None,
    alpha: AlphaStrategy | None = None,
    repeats: int = 20,
    on_step: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> dict[str, ProxyRun]:
    """Compute every proxy on every architecture, then evaluate each proxy.

    In-process and uncached unless ``workers``/``cache`` are given (see :func:`run_benchmark`,
    which also reports the wall time and what came from the cache)."""
    return run_benchmark(bench, proxy_names, seed, seq_len, alpha, repeats, on_step, **kwargs).runs


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
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8, n_tasks))


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
    raw: dict[str, list[Any]] = {p.name: [math.nan] * n for p in proxies}
    seconds = {p.name: np.zeros(n) for p in proxies}
    errors: dict[str, dict[str, str]] = {p.name: {} for p in proxies}
    specs: dict[tuple[int, str], dict[str, Any]] = {}
    todo: list[tuple[int, list[str]]] = []
    cached = 0
    invalid_before = cache.invalid if cache else 0
    for i, entry in enumerate(bench.entries):
        missing = []
        for p in proxies:
            if cache is None:
                missing.append(p.name)
                continue
            spec = ScoreCache.spec(bench.space, entry.config, p, seed, seq_len, batch_size, options)
            specs[(i, p.name)] = spec
            hit = cache.get(spec)
            if hit is None:
                missing.append(p.name)
            else:
                raw[p.name][i] = hit.value
                seconds[p.name][i] = hit.seconds
                cached += 1
        if missing:
            todo.append((i, missing))
    done = n - len(todo)
    if on_step and done:
        on_step(done)

    computed = 0

    def record(i: int, results: dict[str, tuple[Any, float, str | None]]) -> None:
        nonlocal done, computed
        for name, (value, secs, error) in results.items():
            seconds[name][i] = secs
            if error is not None:
                errors[name][bench.entries[i].id] = error
                continue
            raw[name][i] = value
            computed += 1
            if cache is not None:
                cache.put(specs[(i, name)], value, secs)
        done += 1
        if on_step:
            on_step(done)

    n_workers = default_workers(proxies, len(todo)) if workers is None else max(1, int(workers))
    n_workers = min(n_workers, max(1, len(todo)))
    settings = {"seed": seed, "seq_len": seq_len, "batch_size": batch_size, "options": options}
    if n_workers == 1:
        for i, names in todo:
            record(i, score_architecture(bench.space, bench.entries[i].config, names, **settings))
    else:
        tasks = [(i, bench.entries[i].config, names) for i, names in todo]
        _run_pool(tasks, n_workers, bench.space, settings, record)

    truth = np.array([e.ground_truth for e in bench.entries])
    sizes = _sizes(bench)
    runs = {}
    for p in proxies:
        if p.balanced:
            comps = _stack_components(raw[p.name])
            if comps:
                scores, result = evaluate_balanced(
                    comps,
                    truth,
                    bench.higher_is_better,
                    alpha or AlphaStrategy("heuristic"),
                    repeats,
                    seed,
                    space=bench.space,
                    ids=[e.id for e in bench.entries],
                )
            else:  # failed on every architecture
                scores = np.full(n, math.nan)
                result = rank_correlation(scores, truth, bench.higher_is_better, seed=seed).as_dict()
            runs[p.name] = ProxyRun(p.name, scores, seconds[p.name], result, errors[p.name], comps)
        else:
            scores = np.array(raw[p.name], dtype=np.float64)
            result = rank_correlation(scores, truth, bench.higher_is_better, seed=seed).as_dict()
            runs[p.name] = ProxyRun(p.name, scores, seconds[p.name], result, errors[p.name])
    for run in runs.values():
        run.result["tau_iso"] = tau_iso(run.scores, truth, sizes, bench.higher_is_better)
    return BenchmarkScores(
        runs=runs,
        wall_seconds=time.perf_counter() - t_start,
        workers=n_workers,
        computed=computed,
        cached=cached,
        invalid=(cache.invalid - invalid_before) if cache else 0,
        batch_size=batch_size,
        settings=settings,
    )


def score_architecture(
    space: Any,
    config: Any,
    names: Sequence[str],
    seed: int = 0,
    seq_len: int | None = None,
    batch_size: int | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, tuple[Any, float, str | None]]:
    """``{proxy: (value, seconds, error)}`` for one architecture.

    ``value`` is a float, or the components dict of a balanced proxy (None on error).
    ``seconds`` is the proxy's own compute time plus, for proxies that need the model, the
    time of building it once. Every proxy gets a pristine copy of the model.
    """
    proxies = [get_proxy(n) for n in dict.fromkeys(names)]
    users = [p for p in proxies if p.needs_model]
    pristine, build_s, build_error = None, 0.0, None
    if users:
        t0 = time.perf_counter()
        try:
            pristine = space.build(config, seed=seed)
        except Exception as exc:  # e.g. out of memory: every proxy needing the model fails
            build_error = f"building the model: {type(exc).__name__}: {exc}"
        build_s = time.perf_counter() - t0
    out: dict[str, tuple[Any, float, str | None]] = {}
    for p in proxies:
        ctx = ProxyContext(seed=seed, batch_size=batch_size, seq_len=seq_len, options=dict(options or {}))
        if p.needs_model:
            if build_error is not None:
                out[p.name] = (None, build_s, build_error)
                continue
            ctx._built = pristine if p is users[-1] else _copy_model(pristine, space, config, seed)
        t0 = time.perf_counter()
        try:
            value: Any = p.components(space, config, ctx) if p.balanced else p(space, config, ctx)
            error = None
        except Exception as exc:  # a proxy failing on one architecture must not end the run
            value, error = None, f"{type(exc).__name__}: {exc}"
        out[p.name] = (value, time.perf_counter() - t0 + (build_s if p.needs_model else 0.0), error)
        ctx._built = None
    return out


def _copy_model(model: Any, space: Any, config: Any, seed: int) -> Any:
    try:
        return copy.deepcopy(model)
    except Exception:  # a module that cannot be deep-copied: build it again (same seed, same weights)
        return space.build(config, seed=seed)


# ---------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(space: Any, settings: dict[str, Any], threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER.update(space=space, settings=settings)


def _worker_task(config: Any, names: list[str]) -> dict[str, tuple[Any, float, str | None]]:
    return score_architecture(_WORKER["space"], config, names, **_WORKER["settings"])


def _run_pool(
    tasks: list[tuple[int, Any, list[str]]],
    workers: int,
    space: Any,
    settings: dict[str, Any],
    record: Callable[[int, dict[str, tuple[Any, float, str | None]]], None],
    task_fn: Callable[[Any, list[str]], dict[str, tuple[Any, float, str | None]]] = _worker_task,
) -> None:
    """Run ``tasks`` (index, config, proxy names) in ``workers`` spawned processes.

    At most two tasks per worker are in flight. If a worker process dies (killed for memory,
    say), the pool is restarted and the architectures that were in flight are retried once,
    one at a time, so that only the one that kills its worker is recorded as failed.
    """
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // workers)
    queue: deque[tuple[tuple[int, Any, list[str]], int]] = deque((t, 0) for t in tasks)
    while queue:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(space, settings, threads),
        )
        inflight: dict[Any, tuple[tuple[int, Any, list[str]], int]] = {}
        broken = False
        try:
            while (queue or inflight) and not broken:
                while queue and len(inflight) < 2 * workers:
                    if queue[0][1] > 0 and inflight:
                        break  # a retry runs alone
                    task, attempt = queue.popleft()
                    inflight[pool.submit(task_fn, task[1], task[2])] = (task, attempt)
                    if attempt > 0:
                        break
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in finished:
                    task, attempt = inflight.pop(fut)
                    try:
                        record(task[0], fut.result())
                    except BrokenProcessPool:
                        broken = True
                        _retry_or_fail(queue, task, attempt, record)
                    except Exception as exc:  # the task itself failed outside the proxies
                        msg = f"worker: {type(exc).__name__}: {exc}"
                        record(task[0], {name: (None, 0.0, msg) for name in task[2]})
            if broken:
                for task, attempt in inflight.values():
                    _retry_or_fail(queue, task, attempt, record)
        except BaseException:  # Ctrl-C: stop the workers now, not after their queued tasks
            _terminate_workers(pool)  # before shutdown(), which forgets the processes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=not broken, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    processes = getattr(pool, "_processes", None) or {}
    for proc in list(processes.values()):
        with contextlib.suppress(Exception):  # already gone
            proc.terminate()


def _retry_or_fail(queue: deque, task: tuple[int, Any, list[str]], attempt: int, record: Callable) -> None:
    if attempt == 0:
        queue.append((task, 1))
    else:
        msg = "worker process died (killed, e.g. out of memory)"
        record(task[0], {name: (None, 0.0, msg) for name in task[2]})


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
