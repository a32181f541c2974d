"""Score every architecture of a benchmark with a set of proxies and rank-correlate.

One model is built per architecture and shared by every proxy that needs it; the build time
is charged to each of those proxies, so ``seconds_per_arch`` is what a user running that proxy
alone would wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainfree.benchmarks.evaluate import RankResult, rank_correlation
from trainfree.benchmarks.loaders import Benchmark
from trainfree.proxies import ProxyContext, get_proxy


@dataclass
class ProxyRun:
    """Raw scores of one proxy over a benchmark, with timing and its evaluation."""

    name: str
    scores: np.ndarray
    seconds: np.ndarray
    result: RankResult
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def seconds_per_arch(self) -> float:
        return float(np.mean(self.seconds))

    def as_dict(self) -> dict[str, Any]:
        proxy = get_proxy(self.name)
        out = self.result.as_dict()
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
    on_step: Callable[[int], None] | None = None,
) -> dict[str, ProxyRun]:
    """Compute every proxy on every architecture, then evaluate each proxy."""
    proxies = [get_proxy(n) for n in proxy_names]
    n = len(bench.entries)
    scores = {p.name: np.full(n, np.nan) for p in proxies}
    seconds = {p.name: np.zeros(n) for p in proxies}
    errors: dict[str, dict[str, str]] = {p.name: {} for p in proxies}
    for i, entry in enumerate(bench.entries):
        ctx = ProxyContext(seed=seed, seq_len=seq_len)
        build_s = 0.0
        if any(p.needs_model for p in proxies):
            t0 = time.perf_counter()
            ctx.model(bench.space, entry.config)
            build_s = time.perf_counter() - t0
        for p in proxies:
            t0 = time.perf_counter()
            try:
                value = p(bench.space, entry.config, ctx)
            except Exception as exc:  # a proxy failing on one architecture must not end the run
                errors[p.name][entry.id] = f"{type(exc).__name__}: {exc}"
                value = math.nan
            seconds[p.name][i] = time.perf_counter() - t0 + (build_s if p.needs_model else 0.0)
            scores[p.name][i] = value
        if on_step:
            on_step(i + 1)
    truth = np.array([e.ground_truth for e in bench.entries])
    return {
        p.name: ProxyRun(
            p.name,
            scores[p.name],
            seconds[p.name],
            rank_correlation(scores[p.name], truth, bench.higher_is_better, seed=seed),
            errors[p.name],
        )
        for p in proxies
    }
