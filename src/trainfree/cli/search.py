"""The ``search`` and ``calibrate`` commands (registered on :data:`trainfree.cli.app`).

They parse options and print; opening or continuing a run, calibrating and searching belong to
:mod:`trainfree.search` and :mod:`trainfree.hardware.calibration`.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trainfree.cli.listing import (
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
    _check_writable,
    _fail,
    _hardware_settings,
    _parse_sets,
    app,
    console,
    err_console,
    make_executor,
)
from trainfree.cli.frontier import _print_frontier
from trainfree.cli.progress import SearchDisplay, process_started
from trainfree.errors import TrainfreeError
from trainfree.executors.base import measured_elsewhere
from trainfree.registry import unknown
from trainfree.search.costs import MEASURED_FIELDS
from trainfree.search.objectives import limit_text, unitless_limits
from trainfree.search.settings import MAX_REPEATS_FACTOR, SEARCH_HARDWARE, SearchSettings


def default_workers() -> int:
    """One worker per available CPU, at most 8: the same default as ``bench``."""
    from trainfree.hardware.workers import cpu_workers

    return cpu_workers()


def accuracy_table(acc: dict[str, dict[str, float]], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in ("cost", "n", "Spearman", "median |err|", "within 10%", "pairs ordered"):
        table.add_column(col, justify="left" if col == "cost" else "right")
    for name, a in acc.items():
        if name not in MEASURED_FIELDS:  # a component (the activation peak): predictor.json has it
            continue
        if name == "latency_ms" and "decode_ms_per_token" in acc:  # generation: the same figure
            continue
        ordered = a.get("pairs_ordered")  # older predictor files have none
        table.add_row(
            name,
            str(a["n"]),
            f"{a['spearman']:.3f}",
            f"{100 * a['median_ape']:.1f}%",
            f"{100 * a['within_10pct']:.0f}%",
            "-" if ordered is None or ordered != ordered else f"{100 * ordered:.0f}%",
        )
    return table


#: options that --resume honours (the rest are the run's saved settings)
RESUME_OPTIONS = ("out", "resume", "budget", "workers", "executor", "ray_address", "measure_on")


def _check_resume_options(ctx: typer.Context, out: Path) -> None:
    """Refuse, on ``--resume``, an option that would be silently ignored: the run continues
    with its saved settings, so a ``--seed`` given along would mislead."""
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if name not in RESUME_OPTIONS and source is not None and source.name == "COMMANDLINE":
            flag = max(param.opts, key=len) if getattr(param, "opts", None) else name
            raise _fail(
                f"{flag}: --resume continues the run in {out} with its saved settings, which it cannot "
                f"change; drop {flag}, or start a new run in another --out"
            )


S, M = "Search", "Measurement"  # the help's option panels (and Scale-out, cli.py)


def _opt(help: str, panel: str = S, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=panel, **kw)


@app.command()
def search(
    ctx: typer.Context,
    out: Annotated[Path, _opt("run directory: results and checkpoints")],
    space: Annotated[str, _opt("search space (see `spaces`)")] = "gpt2",
    proxy: Annotated[str, _opt("proxy to maximise (see `proxies`)")] = "zerolm",
    objectives: Annotated[
        str, _opt("costs to minimise: latency, memory, params, flops; prefill, decode, kv_cache")
    ] = "latency,memory",
    max_: Annotated[list[str] | None, _opt("limit, e.g. latency=50ms, memory=300MB", S, "--max")] = None,
    budget: Annotated[str | None, _opt("evaluations (3000) or time (90s, 10m, 1h); default 4m")] = None,
    resume: Annotated[bool, _opt("continue the run in --out", S, "--resume")] = False,
    alpha: Annotated[str, _opt("balance of zerolm: heuristic or a number")] = "heuristic",
    seed: Annotated[int, _opt("random seed (search and weights)", min=0)] = 0,
    algorithm: Annotated[str, _opt("nsga2, or random (the baseline)")] = "nsga2",
    pop_size: Annotated[int | None, _opt("models per generation (default: by budget)", min=4)] = None,
    resolution: Annotated[
        float, _opt("% by which frontier costs must differ (0: exact)", metavar="PCT")
    ] = round(100 * SearchSettings.resolution, 6),
    set_values: Annotated[list[str] | None, _opt("narrow a value set: NAME=JSON-list", S, "--set")] = None,
    workers: Annotated[int | None, _opt("proxy processes (default: one per CPU)", min=1)] = None,
    costs: Annotated[str, _opt("predicted (by a cost model) or measured", M)] = "predicted",
    calibration: Annotated[int | None, _opt("models measured to fit the cost model", M, min=12)] = None,
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = SEARCH_HARDWARE.warmup,
    repeats: RepeatsOpt = SEARCH_HARDWARE.repeats,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    no_cache: Annotated[bool, _opt("cache no scores, measurements, cost models", M, "--no-cache")] = False,
    max_latency_ms: Annotated[float | None, _opt("same as --max latency=VALUE", hidden=True)] = None,
    max_memory_mb: Annotated[float | None, _opt("same as --max memory=VALUE", hidden=True)] = None,
    max_params: Annotated[float | None, _opt("same as --max params=VALUE", hidden=True)] = None,
    measure_on: MeasureOnOpt = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Search a space for the Pareto frontier of proxy score vs latency/memory on this device."""
    from trainfree.search import SearchRun
    from trainfree.search.objectives import needs_generation, parse_limits
    from trainfree.spaces import list_spaces

    settings = None
    if resume:
        _check_resume_options(ctx, out)
    try:
        if not resume:
            if space not in list_spaces():
                raise _fail(unknown("space", space, list_spaces()))
            if not 0 <= resolution <= 99:
                raise _fail(f"--resolution {resolution:g}: expected a percent from 0 to 99")
            limits = parse_limits(max_ or [])
            for note in unitless_limits(max_ or []):
                err_console.print(note, highlight=False)
            for name, value in (
                ("latency", max_latency_ms),
                ("memory", max_memory_mb),
                ("params", max_params),
            ):
                if value is not None:
                    limits.update(
                        parse_limits([f"{name}={value!r}" if math.isfinite(value) else f"{name}=inf"])
                    )
            names = [o.strip() for o in objectives.split(",") if o.strip()]
            settings = SearchSettings(
                space=space,
                space_values=_parse_sets(set_values or []),
                proxy=proxy,
                alpha=alpha,
                objectives=names,
                hardware=_hardware_settings(
                    *(backend, device, batch_size, seq_len, threads, warmup, repeats),
                    max_repeats=MAX_REPEATS_FACTOR * repeats,
                    mode="generate" if needs_generation(names, limits) else "forward",
                    prompt_len=prompt_len,
                    context=context,
                    new_tokens=new_tokens,
                    quantize=quantize,
                ),
                limits=limits,
                costs=costs,
                budget=budget or "4m",
                pop_size=pop_size,
                calibration=calibration,
                seed=seed,
                workers=workers or default_workers(),
                algorithm=algorithm,
                use_cache=not no_cache,
                resolution=resolution / 100.0,
            )
            settings.validate()
    except TrainfreeError as exc:  # ConfigError included
        raise _fail(str(exc)) from None
    except RecursionError:
        raise _fail("a --set value is nested too deeply") from None
    ex = make_executor(executor, ray_address, measure_on)  # connects; nothing is written before
    try:
        try:
            if resume:
                run = SearchRun.open(out, budget=budget, workers=workers, executor=ex)
            else:
                run = SearchRun.open(out, settings, executor=ex)
        except TrainfreeError as exc:  # RunDirError, ExecutorError included
            raise _fail(str(exc)) from None
        note = measured_elsewhere(run.records(), ex)
        if note:
            err_console.print(f"[yellow]{note}[/]", highlight=False)
        code = _run_search(run, resumed=bool(run.store))
    finally:
        ex.close()
    if code:
        raise typer.Exit(code=code)


def _run_search(run: Any, resumed: bool) -> int:
    s = run.settings
    limits = ", ".join(limit_text(k, v) for k, v in run.limits.items())
    err_console.print(
        f"[bold]search[/] {s.space}: maximise {s.proxy}, minimise {', '.join(s.objectives)}"
        + (f" ({limits})" if limits else "")
        + f" on {s.hardware.name} (batch {s.hardware.batch_size}, {s.hardware.workload}"
        + ("" if run.executor.name == "local" else f"; {run.executor.describe()}")
        + "), "
        f"costs {s.costs if run.device else 'analytic'}, {s.algorithm}, budget {s.budget}, seed {s.seed}"
        + (f" (continuing: {len(run.store)} evaluated)" if resumed else ""),
        highlight=False,
    )
    terminated = []

    def on_term(signum: int, frame: Any) -> None:  # SIGTERM stops cleanly, like Ctrl-C
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    result, stopped = None, False
    try:
        try:
            if run.finished:  # the same command again: reprinted, nothing evaluated or written
                result = run.run()
            else:
                with SearchDisplay(err_console, run) as display:
                    progress = lambda p: display.on_progress(p, accuracy_table)  # noqa: E731
                    result = run.run(on_progress=progress, started=process_started())
        except KeyboardInterrupt:  # a second stop while the outputs were written (they are atomic)
            stopped = True
        finally:
            run.close()
        if result is not None:
            _print_frontier(run, result)
    except KeyboardInterrupt:  # while printing
        stopped = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped or terminated or result is None or result.stopped == "interrupted":
        err_console.print(
            f"stopped; everything finished is kept: continue with "
            f"`trainfree search --resume --out {run.out}`",
            highlight=False,
        )
        return 143 if terminated else 130
    return 0


@app.command()
def calibrate(
    space: Annotated[str, typer.Option(help="search space name")] = "gpt2",
    n: Annotated[int, typer.Option("-n", min=12, help="architectures to measure")] = 60,
    seed: Annotated[int, typer.Option(min=0, help="seed of the calibration sample and weights")] = 0,
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = SEARCH_HARDWARE.warmup,
    repeats: RepeatsOpt = SEARCH_HARDWARE.repeats,
    generate: Annotated[
        bool, typer.Option("--generate", help="calibrate generation costs (prefill, decode, memory at C)")
    ] = False,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="neither reuse nor keep measurements", rich_help_panel=M)
    ] = False,
    measure_on: MeasureOnOpt = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Measure a calibration sample, fit the cost model, print its held-out accuracy.

    The measurements are kept for this machine, so a search with the same space, value sets
    and measurement settings then starts searching at once. Use the same --batch-size,
    --seq-len, --threads, --warmup and --repeats as the search (their defaults are equal)."""
    from trainfree.hardware import MeasurementCache
    from trainfree.hardware.calibration import RowCache
    from trainfree.spaces import get_space

    cache = not no_cache
    hw = _hardware_settings(
        *(backend, device, batch_size, seq_len, threads, warmup, repeats, MAX_REPEATS_FACTOR * repeats),
        mode="generate" if generate else "forward",
        prompt_len=prompt_len,
        context=context,
        new_tokens=new_tokens,
        quantize=quantize,
    )
    if cache:  # what calibrate is for: measurements kept for this machine; check before measuring
        _check_writable(MeasurementCache().root, "the hardware cache ($TRAINFREE_CACHE)", folder=True)
    try:
        sp = get_space(space, **_parse_sets(set_values or []))
        if hw.backend == "llamacpp":
            from trainfree.hardware.llamacpp import space_error

            if space_error(space):
                raise _fail(space_error(space))
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
    ex = make_executor(executor, ray_address, measure_on)
    try:
        ex.check_device(device)
        rows_cache = RowCache(sp, hw, machine=ex.machine(device)) if cache else None
        model, errors = _calibrate(sp, hw, n, seed, cache, rows_cache, ex)
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
    finally:
        ex.close()
    console.print(
        accuracy_table(model.accuracy, f"{space} on {hw.name}: held-out accuracy (5-fold, n={model.n})")
    )
    console.print(f"cost model: {model.form()}", highlight=False)
    ok, why = model.trustworthy()
    if errors:
        err_console.print(
            f"{len(errors)} architectures could not be measured, e.g. {errors[0]}", highlight=False
        )
    err_console.print(
        (
            "the search will use these predictions"
            if ok
            else f"[yellow]below the bar:[/] {why}; a search would measure every architecture"
        )
        + (f" (kept in {rows_cache.path})" if rows_cache else ""),
        highlight=False,
    )


def _calibrate(
    sp: Any, hw: Any, n: int, seed: int, cache: bool, rows_cache: Any, ex: Any
) -> tuple[Any, list[str]]:
    """The calibration with a progress bar: ``(model, errors)``."""
    from trainfree.hardware import MeasurementCache
    from trainfree.hardware.calibration import calibrate as run_calibration

    with Progress(
        TextColumn("[bold]calibrate"),
        BarColumn(bar_width=24),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("calibrate", total=n)
        try:
            model, _, errors = run_calibration(
                sp,
                hw,
                n,
                seed,
                MeasurementCache() if cache else None,
                rows_cache,
                on_step=lambda k, total: progress.update(task, completed=k),
                executor=ex,
            )
        except ValueError as exc:
            raise _fail(f"no cost model: {exc}") from None
    return model, errors
