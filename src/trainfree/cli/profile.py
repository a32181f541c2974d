"""The ``profile`` command: latency and peak memory of one architecture, measured on this
machine or a Ray node; the measuring is :mod:`trainfree.hardware`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trainfree.cli.boundary import console, err_console, fail
from trainfree.cli.inputs import config_file, hardware_settings, make_executor
from trainfree.cli.options import (
    MEASUREMENT,
    BackendOpt,
    BatchOpt,
    ContextOpt,
    DeviceOpt,
    ExecutorOpt,
    MeasureOnOpt,
    NewTokensOpt,
    PromptOpt,
    QuantizeOpt,
    RayAddressOpt,
    RepeatsOpt,
    SeqOpt,
    ThreadsOpt,
    WarmupOpt,
)
from trainfree.io import atomic_write_json

#: the measurement's generation figures that the JSON output repeats at its top level
GENERATION_FIELDS = ("prefill_ms", "decode_ms_per_token", "memory_mb", "kv_cache_mb")


def profile(
    space: Annotated[str | None, typer.Option(help="search space (default: the config file's)")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="config JSON file")] = None,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = 2,
    repeats: RepeatsOpt = 10,
    generate: Annotated[
        bool, typer.Option("--generate", help="measure generation: prefill, decode per token, memory at C")
    ] = False,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="neither reuse nor store the measurement on disk", rich_help_panel=MEASUREMENT
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the measurement as JSON here")
    ] = None,
    measure_on: MeasureOnOpt = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Measure latency and peak memory of one architecture on this machine (or a device)."""
    if config is None:
        raise fail("--config FILE is required")
    sp, cfg = config_file(space, config)
    settings = hardware_settings(
        *(backend, device, batch_size, seq_len, threads, warmup, repeats),
        mode="generate" if generate else "forward",
        prompt_len=prompt_len,
        context=context,
        new_tokens=new_tokens,
        quantize=quantize,
    )
    _check_generation(sp, cfg, settings)
    ex = make_executor(executor, ray_address, measure_on)
    try:
        got: list[Any] = []
        store = None if no_cache else _measurement_cache()
        with console.status(f"measuring {config.name} on {settings.name} ({ex.describe()}) ..."):
            ex.measure(sp, [cfg], settings, store, 0, lambda i, r: got.append(r))
        machine = ex.machine(device)
    finally:
        ex.close()
    measured = got[0]
    if not measured.measurement.ok:
        raise fail(f"{config.name} cannot be measured on {settings.name}: {measured.measurement.error}")
    console.print(_profile_table(sp, cfg, config.name, settings, measured, machine))
    from trainfree.hardware.wording import what_is_timed

    err_console.print(what_is_timed(settings.as_dict()), highlight=False)
    if json_out:
        atomic_write_json(json_out, _profile_payload(sp, cfg, settings, measured, machine))
        err_console.print(f"wrote {json_out}")


def _measurement_cache() -> Any:
    from trainfree.hardware import MeasurementCache

    return MeasurementCache()


def _check_generation(sp: Any, cfg: Any, settings: Any) -> None:
    """Refuse, before measuring, a generation the backend cannot run for this config."""
    if settings.mode != "generate":
        return
    from trainfree.hardware.settings import get_backend

    reason = get_backend(settings.backend).config_error(sp, cfg, settings)
    if reason:
        raise fail(reason)


def _profile_table(sp: Any, cfg: Any, name: str, settings: Any, measured: Any, machine: dict) -> Table:
    """The measurement as printed: latencies, memory and its parts, parameters."""
    m, cached, node = measured.measurement, measured.cached, measured.node
    generate, quantize, threads = settings.mode == "generate", settings.quantize, settings.threads
    shape = (
        f"prompt {settings.prompt_len}, context {settings.context}"
        if generate
        else f"{settings.seq_len} tokens"
    )
    table = Table(
        title=f"{sp.name}: {name} on {settings.name} (batch {settings.batch_size}, {shape}, "
        f"{threads} thread{'s' if threads > 1 else ''}{'' if quantize == 'none' else ', ' + quantize})",
        caption=f"{machine['cpu']}, {machine['cores']} cores"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
        + (" (from cache)" if cached else "")
        + (f", node {node}" if node not in (None, "local") else ""),
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    if generate:
        context = settings.context
        table.add_row(f"prefill (pp{settings.prompt_len}), median", f"{m.prefill_ms:.2f} ms")
        table.add_row(f"decode per token at context {context} (tg)", f"{m.decode_ms_per_token:.2f} ms")
        table.add_row(f"KV cache at {context} tokens", f"{m.kv_cache_mb:.1f} MB")
    repeats = settings.repeats
    table.add_row(f"{'decode ' if generate else ''}latency, median of {repeats}", f"{m.latency_ms:.2f} ms")
    table.add_row("latency, quartiles", f"{m.latency_p25_ms:.2f} - {m.latency_p75_ms:.2f} ms")
    table.add_row("latency, fastest", f"{m.latency_min_ms:.2f} ms")
    how = "GPU allocator peak" if m.memory_method.startswith("cuda") else "process peak resident memory"
    what = "weights + KV cache + activations" if generate else "weights + activations"
    table.add_row(f"peak memory: {what}", f"{m.memory_mb:.1f} MB")
    weights = m.weights_format or ("int8 Linears" if quantize == "int8" else "float32 parameters")
    table.add_row(f"  weights ({weights})", f"{m.weights_mb:.1f} MB")
    table.add_row(f"  {'KV cache + ' if generate else ''}activations ({how})", f"{m.activation_mb:.1f} MB")
    table.add_row("parameters", f"{sp.param_counts(cfg).total:,}")
    return table


def _profile_payload(sp: Any, cfg: Any, settings: Any, measured: Any, machine: dict) -> dict[str, Any]:
    """What ``--json`` writes: the measurement with its settings, machine and node."""
    m = measured.measurement
    generation = {k: getattr(m, k) for k in GENERATION_FIELDS} if settings.mode == "generate" else {}
    return {
        "space": sp.name,
        "config": sp.config_to_dict(cfg),
        "settings": settings.as_dict(),
        "machine": machine,
        "cached": measured.cached,
        "measured_on": measured.node,
        "measurement": m.as_dict(),
        **generation,
    }
