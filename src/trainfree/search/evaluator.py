"""Evaluating architectures for the search: proxy score, analytic costs, device costs.

Every distinct architecture is evaluated once per run and its record appended to the run's
``evaluations.jsonl`` (one complete JSON object per line, fsynced once per batch), which is
the run's memory: a killed run, resumed, finds every finished evaluation there and repeats
none. When a model is measured on the device after its evaluation (a frontier model of a
run searching on predicted costs), its updated record is appended again; the last line of a
key wins.

Reading is forgiving and loses nothing: a last line cut short by a kill is a crash artefact
and is dropped from the file; any other unreadable line (a corrupted byte, a foreign object)
is skipped with a warning that names it, and left on disk. Records written under other
settings (another fingerprint) are never mixed in.

Proxies run through the shared :class:`~trainfree.proxies.runner.ProxyRunner` (worker
processes, the score cache). Device measurements go through the run's executor
(:mod:`trainfree.executors`): locally one at a time, each in a fresh process
(:mod:`trainfree.hardware.profiler`); with ``--measure-on`` on the device nodes of a Ray
cluster, one per device at a time, several devices in parallel. Each measured record says
where it was measured (``measured_on``: ``local``, a Ray node id, or None for a cached
figure). Transient failures (a worker that died, a timeout) are retried before an
architecture is called infeasible.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainfree.executors import Executor, MeasureResult, default_executor
from trainfree.hardware import HardwareSettings, MeasurementCache, drift
from trainfree.hardware.costmodel import features_for, gene_values, weights_mb
from trainfree.hardware.load import under_load
from trainfree.hardware.measurement import Measurement
from trainfree.io import append_text, cut_to, parse_json, read_regular
from trainfree.objectives import OBJECTIVES
from trainfree.proxies import get_proxy
from trainfree.proxies.runner import ProxyRunner
from trainfree.search.evaluation import MEASUREMENT_FIELDS, Evaluation

#: failures worth another try: the machine, not the architecture
TRANSIENT = ("worker died", "timed out")


class EvaluationStore:
    """The append-only record of a run's evaluations, keyed by the config's compact JSON.
    ``read``: a line's object to its :class:`Evaluation` (``ValueError``: skipped, not used)."""

    def __init__(
        self,
        path: Path,
        fingerprint: str | None = None,
        read: Callable[[Any], Evaluation] | None = None,
        load: bool = True,
    ) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.read = read or Evaluation.from_flat
        self.records: dict[str, Evaluation] = {}
        self.writes = 0  # calls to add: a record set's version, for what is derived from it
        self.skipped: list[str] = []  # what reading left out, one line each
        if load:
            self.load()

    def load(self) -> None:
        """Read the file (see the module docstring). Only a regular file is read: a symbolic
        link, a FIFO or a folder in its place is refused (:class:`~trainfree.io.UnsafeFileError`)
        before anything is read or cut. A run calls this with its folder locked: cutting the
        last line is a write."""
        try:
            data = read_regular(self.path)
        except FileNotFoundError:
            return
        lines = data.splitlines(keepends=True)
        foreign = 0
        for number, line in enumerate(lines, 1):
            if not line.endswith(b"\n"):  # the tail of a write cut short by a kill
                cut_to(self.path, len(data) - len(line))
                self.skipped.append(f"line {number}: cut short by an interrupted write (removed)")
                break
            try:
                ev = self.read(parse_json(line))
            except ValueError as exc:
                self.skipped.append(f"line {number}: unreadable ({exc}), skipped and kept")
                continue
            if self.fingerprint is not None and ev.fp != self.fingerprint:
                foreign += 1
                continue
            self.records[ev.key] = ev
        if foreign:
            self.skipped.append(f"{foreign} records of other settings (another fingerprint) ignored")
        for message in self.skipped:
            warnings.warn(f"{self.path.name}: {message}", RuntimeWarning, stacklevel=3)

    def next_index(self) -> int:
        """One past the highest index: not ``len``, which a skipped unreadable line makes
        smaller than the indices already given out."""
        return max((r.index for r in self.records.values()), default=-1) + 1

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, records: Sequence[Evaluation | dict[str, Any]]) -> None:
        """Append ``records`` (one line each; a line's object is read as one) and fsync once."""
        if not records:
            return
        evs = [r if isinstance(r, Evaluation) else Evaluation.from_flat(r) for r in records]
        lines = "".join(json.dumps(_json_ready(r.flat()), separators=(",", ":")) + "\n" for r in evs)
        append_text(self.path, lines)
        self.writes += 1
        for r in evs:
            self.records[r.key] = r


def measurement_fields(m: Measurement, cached: bool) -> dict[str, Any]:
    """The record fields of a device measurement (``measured`` True when it succeeded)."""
    out: dict[str, Any] = {
        "measured": bool(m.ok),
        "hardware_cached": cached,
        "seconds_measure": 0.0 if cached else m.seconds_setup + m.seconds_memory + m.seconds_latency,
    }
    if m.ok:
        for o in OBJECTIVES.values():
            value = getattr(m, o.measurement) if o.measurement else None
            # a forward pass has no generation figures (NaN): not written into its records
            if value is not None and not (o.mode == "generate" and math.isnan(value)):
                out[o.field] = value
        out.update({f: getattr(m, f) for f in MEASUREMENT_FIELDS})
        out["under_load"] = under_load(out)
    return out


class Evaluator:
    """Turns configs into records: proxy (worker pool, cache), analytic costs, features for
    the cost model; and measures records on the device when asked."""

    def __init__(
        self,
        space: Any,
        proxy: str,
        hardware: HardwareSettings,
        store: EvaluationStore,
        runner: ProxyRunner,
        cache: MeasurementCache | None,
        seed: int,
        fingerprint: str,
        device_costs: bool,
        executor: Executor | None = None,
    ) -> None:
        self.space, self.proxy, self.hardware = space, get_proxy(proxy), hardware
        self.store, self.runner, self.cache = store, runner, cache
        self.seed, self.fingerprint, self.device_costs = seed, fingerprint, device_costs
        self.executor = executor or default_executor()
        self.measure_seconds: list[float] = []  # wall seconds per measurement (a batch's share)
        self.on_measured: Callable[[], None] | None = None  # told after each measurement

    def close(self, kill: bool = False) -> None:
        self.runner.close(kill=kill)

    def new_configs(self, configs: Sequence[Any]) -> dict[str, Any]:
        """The configs not evaluated yet, by key (first occurrence kept)."""
        todo: dict[str, Any] = {}
        for cfg in configs:
            key = self.space.config_to_json(cfg)
            if key not in self.store and key not in todo:
                todo[key] = cfg
        return todo

    def evaluate(
        self, configs: Sequence[Any], generation: int, measure: bool = False, limit: int | None = None
    ) -> list[Evaluation | None]:
        """Evaluate the not-yet-evaluated ``configs`` (the first ``limit`` of them) and store
        their records; with ``measure`` each is also measured on the device before it is
        stored. Returns the records of ``configs`` in order (None: left out by ``limit``)."""
        todo = self.new_configs(configs)
        keys, cfgs = list(todo)[:limit], list(todo.values())[:limit]
        records: list[Evaluation | None] = [None] * len(cfgs)

        def done(i: int, scores: dict[str, tuple[Any, float, str | None]]) -> None:
            records[i] = self._record(keys[i], cfgs[i], scores[self.proxy.name], generation)

        self.runner.score(cfgs, [self.proxy.name], done)
        finished = [r for r in records if r is not None]
        first = self.store.next_index()
        for i, rec in enumerate(finished):
            rec.index = first + i
        if measure:
            feasible = [i for i, rec in enumerate(finished) if rec.feasible]

            def measured(j: int, fields: dict[str, Any]) -> None:
                finished[feasible[j]] = finished[feasible[j]].with_measurement(fields)

            self._measure([cfgs[i] for i in feasible], measured)
        self.store.add(finished)
        return [self.store.records.get(self.space.config_to_json(c)) for c in configs]

    def measure_records(self, records: Sequence[Evaluation]) -> list[Evaluation]:
        """Measure already-stored records on the device; their updated records are stored."""
        out: list[Evaluation | None] = [None] * len(records)

        def measured(i: int, fields: dict[str, Any]) -> None:
            new = records[i].with_measurement(fields)
            self.store.add([new])  # stored as it arrives: a kill loses no finished measurement
            out[i] = new

        self._measure([self.space.config_from_dict(rec.config) for rec in records], measured)
        return [r for r in out if r is not None]

    def _measure(self, configs: Sequence[Any], done: Callable[[int, dict[str, Any]], None]) -> None:
        """Measure ``configs`` through the executor (in parallel where it has several
        devices), calling ``done(i, fields)`` as each is final. A transient failure (a worker
        that died, a timeout) is tried again, at most three times in all, after a back-off.

        A hardware-cache entry measured in an earlier session of the machine
        (``drift.earlier_session``) is measured again, and the cache entry replaced: this machine's
        speed drifts by up to 12% over hours (docs/search.md), and a run's measured figures
        are meant to be of the machine as it is now, like its cost model's."""
        t0 = time.perf_counter()
        stale: list[int] = []

        def fresh_or_stale(i: int, fields: dict[str, Any]) -> None:
            old = drift.earlier_session(fields.get("measured_at"), time.time())
            if fields.get("hardware_cached") and old:
                stale.append(i)
            else:
                done(i, fields)
                if self.on_measured:
                    self.on_measured()

        self._measure_batch(configs, fresh_or_stale, refresh=False)
        if stale:
            self._measure_batch(
                [configs[i] for i in stale], lambda j, fields: done(stale[j], fields), refresh=True
            )
        if configs:
            share = (time.perf_counter() - t0) / len(configs)
            self.measure_seconds.extend([share] * len(configs))

    def _measure_batch(
        self, configs: Sequence[Any], done: Callable[[int, dict[str, Any]], None], refresh: bool
    ) -> None:
        """:meth:`_measure`'s retry loop; ``refresh``: measure past the cache, then store."""
        todo = list(range(len(configs)))
        cache = self.cache.refreshing() if refresh and self.cache is not None else self.cache
        for attempt in range(3):
            retry: list[int] = []
            on_result = functools.partial(self._measured, todo, retry, attempt == 2, done)
            self.executor.measure(
                self.space, [configs[i] for i in todo], self.hardware, cache, self.seed, on_result
            )
            if not retry:
                break
            time.sleep(0.5 * 2**attempt)  # a busy machine: back off, then try again
            todo = sorted(retry)

    @staticmethod
    def _measured(
        batch: list[int],
        retry: list[int],
        last: bool,
        done: Callable[[int, dict[str, Any]], None],
        j: int,
        r: MeasureResult,
    ) -> None:
        """One result of a measurement batch: final (``done``), or transient (``retry``)."""
        m = r.measurement
        if not m.ok and not last and any(t in (m.error or "") for t in TRANSIENT):
            retry.append(batch[j])
            return
        fields = measurement_fields(m, r.cached)
        fields["measured_on"] = r.node
        if not m.ok:
            fields["measure_error"] = m.error
        done(batch[j], fields)

    def _record(
        self, key: str, config: Any, proxy_out: tuple[Any, float, str | None], generation: int
    ) -> Evaluation:
        value, seconds, error = proxy_out
        rec = Evaluation(
            key=key,
            config=self.space.config_to_dict(config),
            generation=generation,
            fp=self.fingerprint,
            feasible=error is None,
            reason=None if error is None else f"proxy {self.proxy.name}: {error}",
            seconds_proxy=seconds,
            values=self._analytic(config),
        )
        if error is None and self.proxy.balanced:
            rec.components = dict(sorted(value.items()))
        elif error is None:
            rec.score = value
        if self.device_costs:
            length, what = self.hardware.seq_len, "seq_len"
            if self.hardware.mode == "generate":
                length, what = self.hardware.context, "context"
            if length > self.space.max_seq_len(config):
                rec.feasible, rec.reason = False, f"{what} {length} exceeds the model's positions"
            rec.features = features_for(self.space, config, self.hardware)
            rec.weights_mb = weights_mb(self.space, config, self.hardware)
            rec.genes = gene_values(self.space, config)
        return rec

    def _analytic(self, config: Any) -> dict[str, Any]:
        """Every analytic objective's value (and the decoder's parameters), by record field;
        an objective undefined here (the KV cache of a forward-pass run) is left out."""
        out: dict[str, Any] = {}
        for o in OBJECTIVES.values():
            value = o.analytic_value(self.space, config, self.hardware)
            if value is not None:
                out[o.field] = value
        out["decoder_params"] = self.space.param_counts(config).decoder  # shown with params
        return out


def _json_ready(obj: Any) -> Any:
    """NaN and infinities as None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj
