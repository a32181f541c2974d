"""Timing forward passes on a machine that is doing something else.

A user's laptop is rarely quiet. On the 2-core development VM, with two busy loops beside
a single-thread measurement, a GPT-2 forward pass took 2.6-3.0x its quiet wall time while its
on-CPU time stayed within 5% of the quiet figure (docs/search.md, "A busy machine"): the
other programs do not make the pass do more work, they take the core away from it. So:

- **the clock**: a single-thread CPU measurement (the search's default) is timed by the
  process's **on-CPU time** (``time.process_time``), which a run that is descheduled does not
  accrue; on a quiet machine it equals the wall time within 1-2% (a forward pass neither
  sleeps nor waits for I/O). Multi-thread and CUDA measurements keep the wall clock: an
  intra-op thread pool's spinning threads burn CPU time while they wait, and a GPU's time is
  not the CPU's;
- **interference, detected**: each run's share of wall time spent off the CPU says whether
  another program took the core (``interrupted_share``: the share of runs that lost more
  than 5%), and a fixed reference kernel (a 192x512 by 512x1024 matrix product, an FFN layer
  of a small model) is timed before and after the model: its on-CPU time rises when other
  programs share the caches and the memory bus, which no clock removes;
- **repeats that adapt**: after ``repeats`` runs, more are taken while the runs' spread
  (interquartile range over median) is above 5%, up to ``max_repeats``; a measurement whose
  spread stays above 10% is marked not repeatable;
- **the statistic**: the median of the chosen clock's runs, robust to the odd slow one;
- **the machine's load**: before each run the number of other programs running is read
  (Linux's ``/proc/loadavg``): a busy machine is said so even where it did not slow a
  measurement down.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the runs' spread (IQR / median) below which no more runs are taken, and above twice which
#: a measurement is not repeatable
SPREAD_TARGET = 0.05
#: a run that spent more than this share of its wall time off the CPU was interrupted
OFF_CPU = 0.05


@dataclass
class Timing:
    """The timed runs of one measurement and what they say about the machine."""

    wall_ms: list[float]
    cpu_ms: list[float]
    clock: str  # "cpu": on-CPU time (single-thread CPU runs), "wall": wall time
    reference_ms: float = math.nan
    others: list[float] | None = None  # other programs running before each run (Linux)

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.cpu_ms if self.clock == "cpu" else self.wall_ms, dtype=float)

    def spread(self) -> float:
        v = self.values
        if len(v) < 2:
            return 0.0
        p25, p50, p75 = np.percentile(v, [25, 50, 75])
        return float((p75 - p25) / p50) if p50 > 0 else math.inf

    def interrupted_share(self) -> float:
        """The share of runs that spent more than ``OFF_CPU`` of their wall time off the CPU
        (single-thread runs only: elsewhere CPU time is no measure of being descheduled)."""
        if self.clock != "cpu" or not self.wall_ms:
            return math.nan
        wall, cpu = np.asarray(self.wall_ms), np.asarray(self.cpu_ms)
        return float(np.mean(cpu < (1.0 - OFF_CPU) * wall))

    def summary(self) -> dict[str, Any]:
        """The :class:`~trainfree.hardware.profiler.Measurement` fields of these runs."""
        v = self.values
        p25, p50, p75 = np.percentile(v, [25, 50, 75])
        spread = self.spread()
        return {
            "latency_ms": float(p50),
            "latency_p25_ms": float(p25),
            "latency_p75_ms": float(p75),
            "latency_min_ms": float(v.min()),
            "runs_ms": [round(float(t), 4) for t in self.wall_ms],
            "cpu_runs_ms": [round(float(t), 4) for t in self.cpu_ms],
            "latency_clock": self.clock,
            "latency_spread": spread,
            "repeatable": bool(spread <= 2 * SPREAD_TARGET),
            "interrupted_share": self.interrupted_share(),
            "reference_ms": self.reference_ms,
            "others_running": float(np.mean(self.others)) if self.others else math.nan,
        }


def clock_for(device: str, threads: int) -> str:
    """Which clock times a measurement (see the module docstring)."""
    return "cpu" if device == "cpu" and threads == 1 else "wall"


def others_running() -> float:
    """How many other threads are running or ready to run now, besides the caller (Linux:
    the fourth field of ``/proc/loadavg``; NaN elsewhere)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/loadavg") as fh:
        return max(0.0, float(fh.read().split()[3].split("/")[0]) - 1.0)
    return math.nan


def reference_ms() -> float:
    """On-CPU milliseconds of the reference kernel (the fastest of five), on the threads set."""
    import torch

    a, w = torch.ones(192, 512), torch.ones(512, 1024)
    best = math.inf
    for _ in range(5):
        c0 = time.process_time()
        torch.mm(a, w)
        best = min(best, (time.process_time() - c0) * 1000.0)
    return best


def time_runs(
    run: Callable[[], Any],
    sync: Callable[[], None],
    warmup: int,
    repeats: int,
    max_repeats: int,
    clock: str,
    reference: Callable[[], float] | None = None,
) -> Timing:
    """``warmup`` untimed runs, then ``repeats`` timed ones and more while their spread is
    above ``SPREAD_TARGET`` (at most ``max_repeats`` in all); ``reference`` is timed before
    and after (the faster counts: it is the machine's speed with the least interference)."""
    for _ in range(warmup):
        run()
    sync()
    before = reference() if reference else math.nan
    timing = Timing([], [], clock, others=[])
    while len(timing.wall_ms) < repeats or (
        len(timing.wall_ms) < max_repeats and timing.spread() > SPREAD_TARGET
    ):
        load = others_running()
        if math.isfinite(load):
            timing.others.append(load)
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        sync()
        timing.cpu_ms.append((time.process_time() - c0) * 1000.0)
        timing.wall_ms.append((time.perf_counter() - t0) * 1000.0)
    after = reference() if reference else math.nan
    timing.reference_ms = float(np.nanmin([before, after])) if reference else math.nan
    return timing
