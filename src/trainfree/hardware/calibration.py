"""Calibration on the device: the sample a cost model is fitted on, its rows kept per machine.

- :func:`calibration_sample`: a space-filling sample of a space's genome;
- :func:`measured_row`: the training row of a measured architecture;
- :class:`RowCache`: the calibration rows kept per machine, space, value sets and hardware
  settings (``$TRAINFREE_CACHE/costmodels``), so that the next run on the machine starts
  searching at once;
- :func:`fresh_configs`: what to measure first when every cached row is from an earlier
  session (the machine's speed drifts; :mod:`trainfree.hardware.drift`);
- :func:`calibrate`: measure a sample and fit a :class:`~trainfree.hardware.costmodel.CostModel`
  (``trainfree calibrate``; the search calibrates through ``trainfree.search.loop``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.stats import qmc

from trainfree.errors import ConfigError
from trainfree.hardware import drift
from trainfree.hardware.costmodel import CostModel, features_for, fit_cost_model, gene_values, make_row
from trainfree.hardware.measurement import machine_info
from trainfree.hardware.measurement_cache import MeasurementCache, default_cache_dir
from trainfree.hardware.settings import HardwareSettings, get_backend
from trainfree.io import atomic_write_json, read_json

#: /2: latencies timed with a steady allocator; /3: a single-thread latency is on-CPU time;
#: /4: llama's generation features count the weights a decode step streams
FORMAT = "trainfree-costmodel-rows/4"


def calibration_sample(space: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` distinct architectures spread over the whole genome: a Latin hypercube over the
    gene indices (every value of every gene is drawn about equally often, which uniform
    sampling of a few dozen points does not guarantee), decoded."""
    lo, hi = space.bounds()
    out: dict[str, Any] = {}
    rng_seed = seed
    while len(out) < n and rng_seed < seed + 20:
        u = qmc.LatinHypercube(d=len(lo), seed=rng_seed).random(n)
        for x in np.floor(lo + u * (hi - lo + 1)).astype(np.int64):
            cfg = space.decode(np.minimum(x, hi))
            out.setdefault(space.config_to_json(cfg), cfg)
            if len(out) == n:
                break
        rng_seed += 1
    return list(out.values())


def measured_row(space: Any, config: Any, settings: Any, m: Any) -> dict[str, Any] | None:
    """The training row of ``config`` and its measurement ``m`` (None if it failed or is
    unusable): its features at ``settings``' batch and length, and its gene values."""
    if not m.ok:
        return None
    features = features_for(space, config, settings)
    return make_row(space.config_to_json(config), features, m, gene_values(space, config))


def fresh_configs(space: Any, rows: Sequence[dict[str, Any]], n: int, seed: int) -> list[Any]:
    """``drift.FRESH_ROWS`` calibration architectures not among ``rows`` when every row is
    from an earlier session ([] otherwise): measured now, they level the earlier sessions'
    latencies to the machine's speed today (:mod:`trainfree.hardware.drift`)."""
    if not drift.stale([r.get("measured_at") for r in rows], time.time()):
        return []
    known = {r["key"] for r in rows}
    more = calibration_sample(space, n + drift.FRESH_ROWS, seed + 1)
    return [cfg for cfg in more if space.config_to_json(cfg) not in known][: drift.FRESH_ROWS]


def current_rows(space: Any, hardware: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with their features and genes computed from their keys as they are now (the
    measurements stay): rows cached before a feature changed, or before the shape correction
    had genes, are fitted on today's. A row whose key no longer parses keeps its own."""
    for r in rows:
        with contextlib.suppress(ConfigError, ValueError, TypeError, KeyError, AttributeError):
            config = space.config_from_json(r["key"])
            r["features"] = features_for(space, config, hardware)
            r["genes"] = gene_values(space, config)
    return rows


class Measurer(Protocol):
    """What measures the calibration sample: an executor's ``measure``, which calls
    ``on_result(i, result)`` (``result.measurement``) as each config is measured."""

    def measure(
        self,
        space: Any,
        configs: Sequence[Any],
        settings: HardwareSettings,
        cache: MeasurementCache | None,
        seed: int,
        on_result: Callable[[int, Any], None],
    ) -> None: ...


class RowCache:
    """Calibration measurements kept per (machine, space, value sets, hardware settings);
    ``machine``: the measuring machine's description (default: this one's)."""

    def __init__(
        self, space: Any, hardware: Any, root: Path | None = None, machine: dict[str, Any] | None = None
    ) -> None:
        key = {
            "machine": machine if machine is not None else machine_info(hardware.device),
            "space": space.name,
            "values": {k: list(v) for k, v in space.values.items()},
            "hardware": {k: v for k, v in hardware.as_dict().items() if k != "timeout_s"},
        }
        key.update(get_backend(hardware.backend).key_fields())  # as the measurement cache does
        self.key = json.loads(json.dumps(key, default=str))
        self.space, self.hardware = space, hardware
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:24]
        self.path = (
            Path(root) if root else default_cache_dir().parent / "costmodels"
        ) / f"{space.name}-{digest}.json"

    def load(self) -> list[dict[str, Any]]:
        try:
            data = read_json(self.path)
            if data.get("format") != FORMAT or data.get("key") != self.key:
                return []
            rows = [r for r in data["rows"] if isinstance(r, dict) and isinstance(r.get("features"), dict)]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return []
        return current_rows(self.space, self.hardware, rows)

    def save(self, rows: Sequence[dict[str, Any]]) -> None:
        merged = {r["key"]: r for r in [*self.load(), *rows]}
        with contextlib.suppress(OSError):  # a cache that cannot be written costs the next run time only
            atomic_write_json(self.path, {"format": FORMAT, "key": self.key, "rows": list(merged.values())})


def calibrate(
    space: Any,
    settings: HardwareSettings,
    n: int,
    seed: int = 0,
    cache: MeasurementCache | None = None,
    rows_cache: RowCache | None = None,
    on_step: Callable[[int, int], None] | None = None,
    *,
    executor: Measurer,
) -> tuple[CostModel, list[dict[str, Any]], list[str]]:
    """Measure ``n`` space-filling architectures (through the measurement cache), fit a cost
    model on them and the rows cached for this machine; returns the model, the rows and the
    errors of architectures that could not be measured. ``executor``: where to measure (an
    executor of :mod:`trainfree.executors`, which sits above this package: the caller
    chooses it, ``executors.default_executor()`` measuring here one at a time)."""
    rows = {r["key"]: r for r in (rows_cache.load() if rows_cache else [])}
    errors = []
    configs = calibration_sample(space, n, seed)
    todo = [cfg for cfg in configs if space.config_to_json(cfg) not in rows]
    if not todo:
        todo = fresh_configs(space, list(rows.values()), n, seed)
        configs = [*configs, *todo]
    done = len(configs) - len(todo)
    if on_step:
        on_step(done, len(configs))

    def measured(i: int, result: Any) -> None:
        nonlocal done
        cfg, m = todo[i], result.measurement
        row = measured_row(space, cfg, settings, m)
        if row is None:
            errors.append(f"{space.config_to_json(cfg)[:60]}...: {m.error}")
        else:
            rows[row["key"]] = row
        done += 1
        if on_step:
            on_step(done, len(configs))

    executor.measure(space, todo, settings, cache, seed, measured)
    model = fit_cost_model(list(rows.values()))
    if rows_cache:
        rows_cache.save(list(rows.values()))
    return model, list(rows.values()), errors
