"""Evaluating architectures for the search: proxy score, analytic costs, measured costs.

Every distinct architecture is evaluated once per run and its record appended to the run's
``evaluations.jsonl`` (one complete JSON object per line, flushed and fsynced), which is the
run's memory: a killed run, resumed, finds every finished evaluation there and repeats none.
A line cut short by a kill is detected and dropped on reading.

Proxies are computed in parallel worker processes (``workers``); latency and memory are then
measured one architecture at a time, each in its own fresh process (``trainfree.hardware``), so
that timings do not disturb each other.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from trainfree.hardware import HardwareSettings, MeasurementCache, measure_cached
from trainfree.proxies import ProxyContext, get_proxy

#: the record field of each cost objective (all minimised); latency and memory are measured
COST_FIELDS = {"latency": "latency_ms", "memory": "memory_mb", "params": "params", "flops": "flops"}
COST_OBJECTIVES = tuple(COST_FIELDS)
HARDWARE_OBJECTIVES = ("latency", "memory")


def proxy_task(space: Any, config: Any, proxy_name: str, seed: int, seq_len: int | None) -> dict[str, Any]:
    """Score one architecture with one proxy (runs in a worker process). A balanced proxy
    returns its components; the run's alpha is applied later, over the population."""
    proxy = get_proxy(proxy_name)
    t0 = time.perf_counter()
    try:
        ctx = ProxyContext(seed=seed, seq_len=seq_len)
        if proxy.balanced:
            out: dict[str, Any] = {"components": proxy.components(space, config, ctx)}
        else:
            out = {"score": float(proxy(space, config, ctx))}
        values = out.get("components", {"score": out.get("score")})
        if not all(math.isfinite(v) for v in values.values()):
            out = {"error": f"proxy {proxy_name} returned a non-finite value: {values}"}
    except Exception as exc:  # an architecture the proxy cannot score is infeasible, not fatal
        out = {"error": f"proxy {proxy_name}: {type(exc).__name__}: {exc}"[:500]}
    out["seconds_proxy"] = time.perf_counter() - t0
    return out


def _init_worker() -> None:
    torch.set_num_threads(1)


class EvaluationStore:
    """The append-only record of a run's evaluations, keyed by the config's compact JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # the tail of a write cut short by a kill
            try:
                rec = json.loads(line)
                self.records[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            good_end += len(line)
        if good_end < len(data):  # drop the damaged tail so that appends stay parseable
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[record["key"]] = record


class Evaluator:
    """Turns configs into records: proxy (parallel), analytic costs, hardware (sequential)."""

    def __init__(
        self,
        space: Any,
        proxy: str,
        objectives: Sequence[str],
        hardware: HardwareSettings,
        store: EvaluationStore,
        constraints: dict[str, float] | None = None,
        seed: int = 0,
        workers: int = 1,
        cache: MeasurementCache | None = None,
    ) -> None:
        self.space = space
        self.proxy = proxy
        self.objectives = list(objectives)
        self.hardware = hardware
        self.store = store
        self.seed = seed
        self.workers = workers
        self.cache = cache
        limits = constraints or {}
        self.needs_hardware = any(o in HARDWARE_OBJECTIVES for o in self.objectives) or any(
            limits.get(k) is not None for k in ("max_latency_ms", "max_memory_mb")
        )
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _proxies(self, configs: Sequence[Any]) -> list[dict[str, Any]]:
        seq_len = self.hardware.seq_len if self.proxy_needs_data else None
        if self.workers <= 1 or len(configs) <= 1:
            return [proxy_task(self.space, c, self.proxy, self.seed, seq_len) for c in configs]
        if self._pool is None:
            from trainfree.hardware.profiler import worker_context

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=worker_context(), initializer=_init_worker
            )
        futures = [
            self._pool.submit(proxy_task, self.space, c, self.proxy, self.seed, seq_len) for c in configs
        ]
        return [f.result() for f in futures]

    @property
    def proxy_needs_data(self) -> bool:
        return get_proxy(self.proxy).needs_data

    def evaluate(
        self,
        configs: Sequence[Any],
        generation: int,
        should_stop: Callable[[], bool] = lambda: False,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any] | None]:
        """Records for ``configs`` (in order); known ones come from the store. Returns None for
        configs left unevaluated because ``should_stop()`` turned true (budget spent)."""
        keys = [self.space.config_to_json(c) for c in configs]
        todo: dict[str, Any] = {}
        for key, cfg in zip(keys, configs, strict=True):
            if key not in self.store and key not in todo:
                todo[key] = cfg
        if should_stop():
            todo = {}
        # proxies for the whole batch, in parallel; hardware then one at a time
        proxy_out = dict(zip(todo, self._proxies(list(todo.values())), strict=True))
        for key, cfg in todo.items():
            if should_stop():
                break
            record = self._record(key, cfg, proxy_out[key], generation)
            self.store.add(record)
            if on_record:
                on_record(record)
        return [self.store.records.get(k) for k in keys]

    def _record(self, key: str, config: Any, proxy_out: dict[str, Any], generation: int) -> dict[str, Any]:
        counts = self.space.param_counts(config)
        rec: dict[str, Any] = {
            "key": key,
            "index": len(self.store),
            "generation": generation,
            "config": self.space.config_to_dict(config),
            "params": counts.total,
            "decoder_params": counts.decoder,
            "flops": self.space.flops(config, self.hardware.seq_len),
            "feasible": True,
            "reason": None,
            "seconds_proxy": proxy_out["seconds_proxy"],
        }
        if "error" in proxy_out:
            rec.update(feasible=False, reason=proxy_out["error"])
        else:
            rec.update({k: v for k, v in proxy_out.items() if k in ("score", "components")})
        if self.needs_hardware and rec["feasible"]:
            m, cached = measure_cached(self.space, config, self.hardware, self.cache, seed=self.seed)
            rec.update(
                latency_ms=m.latency_ms,
                latency_p25_ms=m.latency_p25_ms,
                latency_p75_ms=m.latency_p75_ms,
                memory_mb=m.memory_mb,
                weights_mb=m.weights_mb,
                hardware_cached=cached,
                seconds_memory=0.0 if cached else m.seconds_setup + m.seconds_memory,
                seconds_latency=0.0 if cached else m.seconds_latency,
            )
            if not m.ok:
                rec.update(feasible=False, reason=m.error)
        return _json_ready(rec)


def _json_ready(obj: Any) -> Any:
    """NaN and infinities as None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj
