"""The one proxy runner: score architectures with proxies, through the score cache, in
worker processes. ``trainfree bench`` and ``trainfree search`` both use it.

- :func:`score_architecture` scores one architecture with several proxies. One model is
  built and shared by every proxy that needs it (each gets its own pristine copy, so no
  proxy sees what another left behind: what makes a cached score sound); the build time is
  charged to each of them.
- :class:`ProxyRunner` scores many architectures: a score found in the
  :class:`~trainfree.runtime.score_cache.ScoreCache` is used as is, the others are computed
  (in this process with ``workers=1``, else in a persistent pool of worker processes) and
  stored as soon as they arrive. A worker process that dies (killed for memory, say) fails
  only the architecture that killed it: the pool is restarted and the architectures that
  were in flight are retried once, one at a time. A cache that cannot be written (a full
  disk) costs a warning, never a score.

Workers ignore Ctrl-C (the main process handles it and terminates them at once, so no
worker prints a traceback), and on Linux they die with their parent (``PR_SET_PDEATHSIG``)
so a ``kill -9`` of the main process leaves no orphan holding memory.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from trainfree.proxies import ProxyContext, get_proxy

#: ``{proxy: (value, seconds, error)}``: value is a float, or a balanced proxy's components
#: dict, or None with ``error`` set
Scores = dict[str, tuple[Any, float, str | None]]


def score_architecture(
    space: Any,
    config: Any,
    names: Sequence[str],
    seed: int = 0,
    seq_len: int | None = None,
    batch_size: int | None = None,
    options: dict[str, Any] | None = None,
) -> Scores:
    """``{proxy: (value, seconds, error)}`` for one architecture (see the module docstring)."""
    proxies = [get_proxy(n) for n in dict.fromkeys(names)]
    users = [p for p in proxies if p.needs_model]
    pristine, build_s, build_error = None, 0.0, None
    if users:
        from trainfree.runtime.workers import too_big

        t0 = time.perf_counter()
        build_error = too_big(space, config)
        try:
            if build_error is None:
                pristine = space.build(config, seed=seed)
        except Exception as exc:  # e.g. out of memory: every proxy needing the model fails
            build_error = f"building the model: {type(exc).__name__}: {exc}"
        build_s = time.perf_counter() - t0
    out: Scores = {}
    for p in proxies:
        ctx = ProxyContext(seed=seed, batch_size=batch_size, seq_len=seq_len, options=dict(options or {}))
        if p.needs_model:
            if build_error is not None:
                out[p.name] = (None, build_s, build_error)
                continue
            ctx._built = pristine if p is users[-1] else _copy_model(pristine, space, config, seed)
        t0 = time.perf_counter()
        try:
            value: Any = p.components(space, config, ctx) if p.balanced else float(p(space, config, ctx))
            error = _non_finite(value)
            if error:
                value = None
        except Exception as exc:  # a proxy failing on one architecture must not end the run
            value, error = None, f"{type(exc).__name__}: {exc}"[:500]
        out[p.name] = (value, time.perf_counter() - t0 + (build_s if p.needs_model else 0.0), error)
        ctx._built = None
    return out


def _non_finite(value: Any) -> str | None:
    values = value if isinstance(value, dict) else {"score": value}
    bad = {k: v for k, v in values.items() if not (isinstance(v, (int, float)) and abs(v) < float("inf"))}
    return f"non-finite value {bad}" if bad else None


def _copy_model(model: Any, space: Any, config: Any, seed: int) -> Any:
    try:
        return copy.deepcopy(model)
    except Exception:  # a module that cannot be deep-copied: build it again (same seed, same weights)
        return space.build(config, seed=seed)


# ---------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def worker_init(
    space: Any = None, settings: dict[str, Any] | None = None, threads: int = 1, owner: int | None = None
) -> None:
    """Initialise a worker process: one torch thread pool of ``threads``, Ctrl-C ignored (the
    parent handles it), death with its owner (the process that started the pool)."""
    import torch

    from trainfree.runtime.workers import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(owner)
    torch.set_num_threads(threads)
    _WORKER.update(space=space, settings=settings or {})


def _worker_task(config: Any, names: list[str]) -> Scores:
    return score_architecture(_WORKER["space"], config, names, **_WORKER["settings"])


Task = tuple[Hashable, Any, list[str]]  # (key, config, proxy names)


class ProxyPool:
    """A persistent pool of ``workers`` processes running ``task_fn(config, names)``."""

    def __init__(
        self,
        space: Any,
        settings: dict[str, Any],
        workers: int,
        task_fn: Callable[[Any, list[str]], Scores] = _worker_task,
    ) -> None:
        self.space, self.settings, self.workers, self.task_fn = space, settings, max(1, workers), task_fn
        self.threads = max(1, (os.cpu_count() or 1) // self.workers)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            from trainfree.runtime.workers import worker_context

            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=worker_context(),
                initializer=worker_init,
                initargs=(self.space, self.settings, self.threads, os.getpid()),
            )
        return self._pool

    def run(self, tasks: Sequence[Task], record: Callable[[Hashable, Scores], None]) -> None:
        """Run ``tasks``, calling ``record(key, scores)`` as each finishes (in any order).

        At most two tasks per worker are in flight. A dead worker fails only its own task
        (see the module docstring)."""
        from trainfree.runtime.workers import main_hidden

        queue: deque[tuple[Task, int]] = deque((t, 0) for t in tasks)
        while queue:
            inflight: dict[Any, tuple[Task, int]] = {}
            broken = False
            try:
                pool = self._executor()
                while (queue or inflight) and not broken:
                    while queue and len(inflight) < 2 * self.workers:
                        if queue[0][1] > 0 and inflight:
                            break  # a retry runs alone
                        task, attempt = queue.popleft()
                        try:
                            with main_hidden():
                                inflight[pool.submit(self.task_fn, task[1], task[2])] = (task, attempt)
                        except (BrokenProcessPool, OSError):  # a worker was killed as it started
                            broken = True
                            _retry_or_fail(queue, task, attempt, record)
                            break
                        if attempt > 0:
                            break
                    finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        task, attempt = inflight.pop(fut)
                        try:
                            result = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            _retry_or_fail(queue, task, attempt, record)
                        except Exception as exc:  # the task itself failed outside the proxies
                            msg = f"worker: {type(exc).__name__}: {exc}"[:500]
                            record(task[0], {name: (None, 0.0, msg) for name in task[2]})
                        else:
                            record(task[0], result)
                if broken:
                    for task, attempt in inflight.values():
                        _retry_or_fail(queue, task, attempt, record)
                    self.close(kill=True)
            except BaseException:  # Ctrl-C, SIGTERM: stop the workers now, not after their tasks
                self.close(kill=True)
                raise

    def close(self, kill: bool = False) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if kill:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):  # already gone
                    proc.kill()
        pool.shutdown(wait=not kill, cancel_futures=True)


def _retry_or_fail(queue: deque, task: Task, attempt: int, record: Callable) -> None:
    if attempt == 0:
        queue.append((task, 1))
    else:
        msg = "worker process died (killed, e.g. out of memory)"
        record(task[0], {name: (None, 0.0, msg) for name in task[2]})


def run_pool(
    tasks: Sequence[Task],
    workers: int,
    space: Any,
    settings: dict[str, Any],
    record: Callable[[Hashable, Scores], None],
    task_fn: Callable[[Any, list[str]], Scores] = _worker_task,
) -> None:
    """Run ``tasks`` once in a fresh :class:`ProxyPool` and close it."""
    pool = ProxyPool(space, settings, workers, task_fn)
    try:
        pool.run(tasks, record)
    finally:
        pool.close()


class ProxyRunner:
    """Scores through the cache, then in this process or the pool (see the module docstring).

    ``settings``: ``seed``, ``seq_len``, ``batch_size``, ``options``, as
    :func:`score_architecture` takes them (and as the cache keys them). ``executor``: where
    the tasks run (:mod:`trainfree.executors`; None: the local pool, or this process with
    ``workers=1``); the cache stays in this process either way."""

    def __init__(
        self,
        space: Any,
        settings: dict[str, Any] | None = None,
        workers: int = 1,
        cache: Any = None,
        executor: Any = None,
    ) -> None:
        self.space = space
        self.executor = executor  # None: the local pool (trainfree.executors.local)
        self.settings = {"seed": 0, "seq_len": None, "batch_size": None, "options": {}, **(settings or {})}
        self.workers = max(1, int(workers))
        self.cache = cache
        self.computed = 0
        self.cached = 0
        self.cache_write_errors = 0
        self._pool: Any = None  # a Scorer: the local ProxyPool, or the executor's

    def _spec(self, config: Any, name: str) -> dict[str, Any]:
        s = self.settings
        return self.cache.spec(
            self.space, config, get_proxy(name), s["seed"], s["seq_len"], s["batch_size"], s["options"]
        )

    def score(
        self,
        configs: Sequence[Any],
        names: Sequence[str],
        record: Callable[[int, Scores], None],
    ) -> None:
        """Call ``record(i, scores)`` for each ``configs[i]`` (cache hits first, in order)."""
        names = list(dict.fromkeys(names))
        specs: dict[tuple[int, str], dict[str, Any]] = {}
        todo: list[Task] = []
        found: dict[int, Scores] = {}
        for i, config in enumerate(configs):
            missing = []
            for name in names:
                hit = None
                if self.cache is not None:
                    specs[(i, name)] = self._spec(config, name)
                    hit = self.cache.get(specs[(i, name)])
                if hit is None:
                    missing.append(name)
                else:
                    found.setdefault(i, {})[name] = (hit.value, hit.seconds, None)
                    self.cached += 1
            if missing:
                todo.append((i, config, missing))
            else:
                record(i, found.pop(i))

        def finished(i: Hashable, scores: Scores) -> None:
            assert isinstance(i, int)
            for name, (value, secs, error) in scores.items():
                if error is None:
                    self.computed += 1
                    if self.cache is not None:
                        self._put(specs[(i, name)], value, secs)
            record(i, {**found.pop(i, {}), **scores})

        local = self.executor is None or self.executor.runs_here
        if self.workers == 1 and local:
            for i, config, missing in todo:
                finished(i, score_architecture(self.space, config, missing, **self.settings))
            return
        if self._pool is None:
            self._pool = (
                ProxyPool(self.space, self.settings, self.workers)
                if self.executor is None
                else self.executor.scorer(self.space, self.settings, self.workers)
            )
        self._pool.run(todo, finished)

    def _put(self, spec: dict[str, Any], value: Any, seconds: float) -> None:
        try:
            self.cache.put(spec, value, seconds)
        except OSError as exc:
            self.cache_write_errors += 1
            if self.cache_write_errors == 1:
                warnings.warn(
                    f"the score cache could not be written ({exc}); scores are kept, not cached",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def close(self, kill: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(kill=kill)
            self._pool = None
