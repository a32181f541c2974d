"""The ``trainfree`` command line: ``spaces``, ``proxies``, ``sample``, ``info``, ``bench``,
``profile``, ``search`` and ``export``.

Spaces and proxies are discovered from their registries, so a new one appears here with no
edit to this file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.table import Table

from trainfree.cli.boundary import (  # noqa: F401  (re-exported for cli_search)
    _check_bench_outputs,
    _check_bench_size,
    _check_writable,
    _Commands,
    _fail,
    console,
    err_console,
)
from trainfree.errors import TrainfreeError
from trainfree.io import atomic_write_json
from trainfree.proxies import get_proxy, list_proxies
from trainfree.spaces import get_space, list_spaces

app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Training-free Transformer architecture search: proxies, benchmarks, search.",
)


def _space(name: str):
    try:
        return get_space(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None


def _config_file(space: str | None, path: Path):
    """``(space, typed config)`` of a config file (bare, or naming its space), or a clear
    error naming the file and the field."""
    from trainfree.spaces.configfile import load_config

    try:
        return load_config(path, space)
    except TrainfreeError as exc:
        raise _fail(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None


def _show_version(value: bool) -> None:
    if value:
        from trainfree import __version__

        console.print(f"trainfree {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _app_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Training-free Transformer architecture search: proxies, benchmarks, search."""


def _plain(text: str) -> str:
    """Docstring text without reStructuredText markup (``x``, :role:`x`), for tables."""
    return re.sub(r"(:\w+:)?``?([^`]+)``?", r"\2", text)


@app.command()
def spaces() -> None:
    """List the registered search spaces, their benchmark and their value sets."""
    for name in list_spaces():
        sp = get_space(name)
        console.print(f"[bold]{name}[/]: {type(sp).summary()}", highlight=False)
        if sp.benchmark is not None:
            b = sp.benchmark
            console.print(
                f"benchmark: {b.title}, $TRAINFREE_DATA/{b.path} (targets: {', '.join(b.targets)})",
                highlight=False,
            )
        else:
            console.print("benchmark: none (no trained models of this space are published)", highlight=False)
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("value set")
        table.add_column("values")
        for key, values in sp.describe().items():
            shown = values if len(values) <= 12 else [*values[:5], "...", *values[-3:]]
            table.add_row(key, f"{', '.join(map(str, shown))}  ({len(values)})")
        console.print(table)


@app.command()
def proxies() -> None:
    """List the registered proxies and what each needs."""
    table = Table(title="proxies (docs/baselines.md: sources and checks)", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("what it scores")
    for name in list_proxies():
        p = get_proxy(name)
        flags = (("model", p.needs_model), ("data", p.needs_data), ("grad", p.needs_grad))
        needs = [k for k, x in flags if x]
        table.add_row(name, "+".join(needs) or "config", _plain(p.description))
    console.print(table)


@app.command()
def sample(
    space: Annotated[str, typer.Option(help="search space name (see `trainfree spaces`)")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of configs")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="random seed")] = 0,
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="print this reference model of the space instead (e.g. SmolLM2-135M)")
    ] = None,
) -> None:
    """Print N sampled configs of a space as JSON lines (or one of its reference models)."""
    try:
        sp = get_space(space, **_parse_sets(set_values or []))  # a bad value set: one line (_Commands)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    if reference is not None:
        refs = sp.references() if hasattr(sp, "references") else {}
        if reference not in refs:
            raise _fail(
                f"--reference {reference!r}: space {space} has {', '.join(refs) or 'no reference models'}"
            )
        sys.stdout.write(sp.config_to_json(refs[reference]) + "\n")
        return
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sys.stdout.write(sp.config_to_json(sp.sample(rng)) + "\n")


@app.command()
def info(
    space: Annotated[str | None, typer.Option(help="search space (default: the config file's)")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="config JSON file")] = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="sequence length for FLOPs (default: the model's longest)")
    ] = None,
) -> None:
    """Parameter counts by sub-module and FLOPs of one config."""
    if config is None:
        raise _fail("--config FILE is required")
    sp, cfg = _config_file(space, config)
    counts = sp.param_counts(cfg).as_dict()
    longest = sp.max_seq_len(cfg)
    if seq_len is not None and seq_len > longest:
        raise _fail(f"--seq-len {seq_len}: the model has {longest} positions; use at most {longest}")
    length = seq_len or longest
    table = Table(title=f"{sp.name}: {config.name}")
    table.add_column("part")
    table.add_column("parameters", justify="right")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    table.add_row(f"flops @ {length} tokens", f"{sp.flops(cfg, length):,}")
    console.print(table)


def _hardware_settings(
    backend: str,
    device: str,
    batch_size: int,
    seq_len: int,
    threads: int,
    warmup: int,
    repeats: int,
    max_repeats: int | None = None,
    **generation: Any,
):
    """Hardware settings from the options; ``generation``: mode, prompt_len, context,
    new_tokens, quantize (``HardwareSettings``)."""
    from trainfree.hardware import HardwareSettings

    cpus = os.cpu_count() or 1
    if threads > cpus:
        raise _fail(f"--threads {threads}: this machine has {cpus} CPUs; use at most {cpus}")
    try:
        if backend == "llamacpp":  # llama.cpp measures generation only (pp and tg)
            from trainfree.export.gguf_export import require_llamacpp

            require_llamacpp("--backend llamacpp")
            generation["mode"] = "generate"
        return HardwareSettings(
            backend=backend,
            device=device,
            batch_size=batch_size,
            seq_len=seq_len,
            threads=threads,
            warmup=warmup,
            repeats=repeats,
            max_repeats=max_repeats,
            **generation,
        )
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None


#: the help's option panels: what a command searches or scores, how it measures, where it runs
M, RAY = "Measurement", "Scale-out (Ray)"
ExecutorOpt = Annotated[
    str | None,
    typer.Option(help="local (default), ray (a local Ray) or ray://HOST:PORT", rich_help_panel=RAY),
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="join the Ray cluster at HOST:PORT", rich_help_panel=RAY)
]
MeasureOnOpt = Annotated[
    str | None,
    typer.Option(help="measure on the Ray nodes with this resource (pi4)", rich_help_panel=RAY),
]


def make_executor(spec: str | None, address: str | None, measure_on: str | None = None):
    """The executor the options ask for (:mod:`trainfree.executors`), or one line, exit 2."""
    from rich.markup import escape

    from trainfree.executors import make_executor as make

    try:
        return make(spec, address, measure_on, notify=lambda m: err_console.print(f"[yellow]{escape(m)}[/]"))
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None


BackendOpt = Annotated[
    str, typer.Option(help="torch (PyTorch), onnx (ONNX Runtime) or llamacpp (GGUF)", rich_help_panel=M)
]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda", rich_help_panel=M)]
BatchOpt = Annotated[int, typer.Option(min=1, help="batch size of the timed pass", rich_help_panel=M)]
SeqOpt = Annotated[int, typer.Option(min=1, help="tokens of the timed forward pass", rich_help_panel=M)]
ThreadsOpt = Annotated[int, typer.Option(min=1, help="CPU threads of the timed pass", rich_help_panel=M)]
WarmupOpt = Annotated[int, typer.Option(min=0, help="untimed warm-up runs", rich_help_panel=M)]
RepeatsOpt = Annotated[int, typer.Option(min=1, help="timed runs (the median is shown)", rich_help_panel=M)]
PromptOpt = Annotated[int, typer.Option(min=1, help="generation: prompt tokens (prefill)", rich_help_panel=M)]
ContextOpt = Annotated[
    int, typer.Option(min=2, help="generation: context of decode and memory", rich_help_panel=M)
]
NewTokensOpt = Annotated[
    int, typer.Option(min=1, help="generation: tokens per timed decode run", rich_help_panel=M)
]
QuantizeOpt = Annotated[
    str,
    typer.Option(
        help="weights: none (float32), int8 (torch); f16, q8_0, q4_k_m (llamacpp)", rich_help_panel=M
    ),
]


@app.command()
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
        typer.Option("--no-cache", help="neither reuse nor store the measurement on disk", rich_help_panel=M),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the measurement as JSON here")
    ] = None,
    measure_on: MeasureOnOpt = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Measure latency and peak memory of one architecture on this machine (or a device)."""
    from trainfree.hardware import MeasurementCache

    if config is None:
        raise _fail("--config FILE is required")
    sp, cfg = _config_file(space, config)
    settings = _hardware_settings(
        *(backend, device, batch_size, seq_len, threads, warmup, repeats),
        mode="generate" if generate else "forward",
        prompt_len=prompt_len,
        context=context,
        new_tokens=new_tokens,
        quantize=quantize,
    )
    generate = settings.mode == "generate"
    if generate:
        from trainfree.hardware.generation import generation_error
        from trainfree.hardware.llamacpp import llamacpp_error

        llamacpp = settings.backend == "llamacpp"
        reason = llamacpp_error(sp, cfg, settings) if llamacpp else generation_error(sp, cfg, settings)
        if reason:
            raise _fail(reason)
    ex = make_executor(executor, ray_address, measure_on)
    try:
        got, store = [], MeasurementCache() if not no_cache else None
        with console.status(f"measuring {config.name} on {settings.name} ({ex.describe()}) ..."):
            ex.measure(sp, [cfg], settings, store, 0, lambda i, r: got.append(r))
        machine = ex.machine(device)
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
    finally:
        ex.close()
    m, cached, node = got[0].measurement, got[0].cached, got[0].node
    if not m.ok:
        raise _fail(f"{config.name} cannot be measured on {settings.name}: {m.error}")
    shape = f"prompt {prompt_len}, context {context}" if generate else f"{seq_len} tokens"
    table = Table(
        title=f"{sp.name}: {config.name} on {settings.name} (batch {batch_size}, {shape}, "
        f"{threads} thread{'s' if threads > 1 else ''}{'' if quantize == 'none' else ', ' + quantize})",
        caption=f"{machine['cpu']}, {machine['cores']} cores"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
        + (" (from cache)" if cached else "")
        + (f", node {node}" if node not in (None, "local") else ""),
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    if generate:
        table.add_row(f"prefill (pp{prompt_len}), median", f"{m.prefill_ms:.2f} ms")
        table.add_row(f"decode per token at context {context} (tg)", f"{m.decode_ms_per_token:.2f} ms")
        table.add_row(f"KV cache at {context} tokens", f"{m.kv_cache_mb:.1f} MB")
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
    console.print(table)
    from trainfree.hardware.wording import what_is_timed

    err_console.print(what_is_timed(settings.as_dict()), highlight=False)
    if json_out:
        atomic_write_json(
            json_out,
            {
                "space": sp.name,
                "config": sp.config_to_dict(cfg),
                "settings": settings.as_dict(),
                "machine": machine,
                "cached": cached,
                "measured_on": node,
                "measurement": m.as_dict(),
                **(
                    {
                        k: getattr(m, k)
                        for k in ("prefill_ms", "decode_ms_per_token", "memory_mb", "kv_cache_mb")
                    }
                    if generate
                    else {}
                ),
            },
        )
        err_console.print(f"wrote {json_out}")


def _parse_sets(items: list[str]) -> dict[str, list]:

    out: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            values = json.loads(text) if sep else None
        except json.JSONDecodeError:
            values = None
        if not sep or not key or not isinstance(values, list) or not values:
            raise _fail(
                f"--set {item!r}: expected NAME=[v1,v2,...] with a JSON list, e.g. --set 'n_layer=[2,4,6]'"
            )
        out[key.strip()] = values
    return out


from trainfree.cli import bench, export, report, search  # noqa: E402,F401  (register their commands)


def main() -> None:  # pragma: no cover - thin wrapper for `python -m trainfree`
    from trainfree.cli.listing import app as registered

    registered()


if __name__ == "__main__":  # pragma: no cover
    main()
