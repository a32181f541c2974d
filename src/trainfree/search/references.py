"""The models people ship, beside a search's frontier: a space's reference models, measured.

A space with shipped reference models (``space.references()``: the ``llama`` space's
SmolLM2, MobileLLM and TinyLlama) has them measured on the run's device with the run's
settings (through the run's executor and hardware cache, so once per machine), and every
output shows them: ``references.csv``, ``frontier.json`` (``references``), a labelled line
on each panel of ``frontier.png`` and, printed at the end, one line per reference model
naming the frontier models that cost no more on every measured objective::

    SmolLM2-135M: decode 23.1 ms/token, memory 612 MB here; 4 frontier models at no more,
    the largest (decoder_params 97.1M): configs/frontier_003_arch00412.json
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from trainfree.objectives import OBJECTIVES

#: the fields a reference row carries besides its name and counts
COLUMNS = (
    "measured",
    "latency_ms",
    "prefill_ms",
    "decode_ms_per_token",
    "memory_mb",
    "weights_mb",
    "activation_mb",
    "kv_cache_mb",
    "measure_error",
)


def affordable(flops: Sequence[float], expected_s: Sequence[float], seconds: float) -> list[int]:
    """The models to measure in ``seconds``: the cheapest first (by FLOPs), while their
    expected measuring times add up to no more."""
    chosen, total = [], 0.0
    for i in sorted(range(len(flops)), key=lambda i: flops[i]):
        if total + expected_s[i] > seconds:
            break
        chosen.append(i)
        total += expected_s[i]
    return sorted(chosen)


def measure_references(
    run: Any, seconds: float | None = None, estimate: Callable[[list[Any]], Sequence[float]] | None = None
) -> list[dict[str, Any]]:
    """One row per reference model of the run's space, measured as the run measures ([]
    for a space without references, or a run without device costs). With ``seconds`` (the
    share of a wall-time budget they may take) and ``estimate`` (expected seconds to measure
    models of given FLOPs: the run's schedule), only those expected to fit are measured, the
    cheapest first: a 1.1B-parameter model takes over a minute to write and measure in
    llama.cpp, and a budget is a promise. The others get a row that says why not."""
    refs = getattr(run.space, "references", None)
    if refs is None or not run.device:
        return []
    named = list(refs().items())
    hw = run.settings.hardware
    fields: list[dict[str, Any]] = [{} for _ in named]
    chosen = list(range(len(named)))
    if seconds is not None and estimate is not None:
        flops = [run.space.flops(cfg, hw.seq_len) for _, cfg in named]
        need = [float(x) for x in estimate(flops)]
        chosen = affordable(flops, need, seconds)
        for i in set(range(len(named))) - set(chosen):
            fields[i] = {
                "measure_error": f"about {need[i]:.0f} s to measure, more than was left of the "
                f"{max(seconds, 0):.0f} s this run's budget keeps for reference models (a longer "
                "--budget measures it)"
            }

    def done(j: int, got: dict[str, Any]) -> None:
        fields[chosen[j]] = got

    run.evaluator._measure([named[i][1] for i in chosen], done)
    rows = []
    for (name, cfg), got in zip(named, fields, strict=True):
        counts = run.space.param_counts(cfg)
        row: dict[str, Any] = {"name": name, "params": counts.total, "decoder_params": counts.decoder}
        kv_cache = OBJECTIVES["kv_cache"].analytic_value(run.space, cfg, hw)  # generation runs only
        if kv_cache is not None:
            row["kv_cache_mb"] = kv_cache
        row.update({k: got[k] for k in COLUMNS if k in got})
        row["measured"] = bool(got.get("measured"))
        rows.append(row)
    return rows


def _cost(row: dict[str, Any], name: str) -> float:
    try:
        value = row.get(OBJECTIVES[name].field)
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(name: str, value: float) -> str:
    o = OBJECTIVES[name]
    unit = "ms/token" if name == "decode" else o.unit
    return f"{name} {value:.1f} {unit}".rstrip() if o.unit else f"{name} {value / 1e6:.1f}M"


def comparisons(
    references: Sequence[dict[str, Any]], models: Sequence[dict[str, Any]], costs: Sequence[str]
) -> list[str]:
    """Per measured reference model: its costs here, and the frontier models that cost no
    more on every objective, with the one of largest ``decoder_params``."""
    lines = []
    for ref in references:
        if not ref.get("measured"):
            lines.append(f"{ref['name']}: not measured ({ref.get('measure_error') or 'unknown reason'})")
            continue
        own = {c: _cost(ref, c) for c in costs}
        shown = ", ".join(_text(c, v) for c, v in own.items() if math.isfinite(v))
        fits = [
            m
            for m in models
            if m.get("costs", "measured") == "measured"
            and all(math.isfinite(v) and _cost(m, c) <= v for c, v in own.items())
        ]
        if not fits:
            lines.append(f"{ref['name']}: {shown} here; no frontier model at no more")
            continue
        best = max(fits, key=lambda m: float(m.get("decoder_params") or 0))
        lines.append(
            f"{ref['name']}: {shown} here; {len(fits)} frontier model{'s' if len(fits) > 1 else ''} "
            f"at no more, the largest (decoder_params {float(best['decoder_params']) / 1e6:.1f}M vs "
            f"{ref['decoder_params'] / 1e6:.1f}M): {best['config_file']}"
        )
    return lines
