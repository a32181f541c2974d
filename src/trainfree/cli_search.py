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

from trainfree.cli import (
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
from trainfree.cli_progress import SearchDisplay, process_started
from trainfree.errors import TrainfreeError
from trainfree.executors.base import measured_elsewhere
from trainfree.search.costs import MEASURED_FIELDS
from trainfree.search.objectives import OBJECTIVES
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


@app.command()
def search(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="run directory (created; holds results and checkpoints)")],
    space: Annotated[str, typer.Option(help="search space name")] = "gpt2",
    proxy: Annotated[str, typer.Option(help="proxy to maximise (see `trainfree proxies`)")] = "zerolm",
    objectives: Annotated[
        str,
        typer.Option(
            help="costs to minimise, comma-separated: latency, memory, params, flops; generation: "
            "prefill, decode, kv_cache (memory is then the peak at --context)"
        ),
    ] = "latency,memory",
    costs: Annotated[
        str, typer.Option(help="predicted (a cost model calibrated here) or measured (every model)")
    ] = "predicted",
    max_: Annotated[
        list[str] | None, typer.Option("--max", help="limit NAME=VALUE, e.g. latency=50ms, memory=300MB")
    ] = None,
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    budget: Annotated[
        str | None, typer.Option(help="evaluations (e.g. 3000) or wall time (90s, 10m, 1h); default 4m")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in --out with its saved settings")
    ] = False,
    alpha: Annotated[
        str, typer.Option(help="balance of a balanced proxy: heuristic or a number")
    ] = "heuristic",
    pop_size: Annotated[
        int | None, typer.Option(min=4, help="architectures per generation (default: sized to the budget)")
    ] = None,
    calibration: Annotated[
        int | None, typer.Option(min=12, help="models measured to fit the cost model (default: by budget)")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="random seed (search and weights)")] = 0,
    workers: Annotated[
        int | None, typer.Option(min=1, help="proxy worker processes (default: one per CPU)")
    ] = None,
    algorithm: Annotated[str, typer.Option(help="nsga2, or random (the baseline)")] = "nsga2",
    resolution: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=99.0,
            help="percent by which measured costs must differ to tell frontier models apart "
            "(0: the exact frontier)",
        ),
    ] = round(100 * SearchSettings.resolution, 6),
    max_latency_ms: Annotated[float | None, typer.Option(help="same as --max latency=VALUE")] = None,
    max_memory_mb: Annotated[float | None, typer.Option(help="same as --max memory=VALUE")] = None,
    max_params: Annotated[float | None, typer.Option(help="same as --max params=VALUE")] = None,
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = SEARCH_HARDWARE.warmup,
    repeats: RepeatsOpt = SEARCH_HARDWARE.repeats,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
    ] = None,
    cache: Annotated[
        bool, typer.Option(help="reuse scores, measurements and cost models cached on disk")
    ] = True,
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
                raise _fail(f"unknown space '{space}'; known: {', '.join(list_spaces())}")
            limits = parse_limits(max_ or [])
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
                use_cache=cache,
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


def _shape(hw: Any) -> str:
    """What a run measures: a forward pass of ``seq_len`` tokens, or generation."""
    if hw.mode != "generate":
        return f"{hw.seq_len} tokens"
    weights = ", int8 weights" if hw.quantize == "int8" else ""
    return (
        f"generating: prompt {hw.prompt_len}, context {hw.context}, {hw.new_tokens} tokens per run{weights}"
    )


def _run_search(run: Any, resumed: bool) -> int:
    s = run.settings
    limits = ", ".join(f"{k} <= {v:g}" for k, v in run.limits.items())
    err_console.print(
        f"[bold]search[/] {s.space}: maximise {s.proxy}, minimise {', '.join(s.objectives)}"
        + (f" ({limits})" if limits else "")
        + f" on {s.hardware.name} (batch {s.hardware.batch_size}, {_shape(s.hardware)}"
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


def _print_frontier(run: Any, result: Any) -> None:
    s = run.settings
    table = Table(
        title=f"Pareto frontier: {len(result.frontier)} of {result.evaluations} architectures "
        f"({result.generations} generations, {result.elapsed:.0f} s, {result.stopped})",
        box=box.SIMPLE_HEAD,
    )
    generating = s.hardware.mode == "generate"
    cols = [
        ("#", "rank"),
        (s.proxy, s.proxy),
        *(
            [("prefill ms", "prefill_ms"), ("decode ms/tok", "decode_ms_per_token"), ("KV MB", "kv_cache_mb")]
            if generating
            else [("lat. ms", "latency_ms")]
        ),
        ("mem. MB", "memory_mb"),
        ("params", "params"),
        ("costs", "costs"),
    ]
    for title, _ in cols:
        table.add_column(title, justify="right")
    for m in result.frontier:
        cells = []
        for _, key in cols:
            v = m.get(key)
            if isinstance(v, float):
                cells.append(f"{v:.3f}" if key == s.proxy else f"{v:.1f}")
            elif isinstance(v, int) and key == "params":
                cells.append(f"{v / 1e6:.2f}M")
            else:
                cells.append("-" if v is None else str(v))
        table.add_row(*cells)
    console.print(table)
    if run.reference_rows:
        from trainfree.search.references import comparisons

        costs = [c for c in s.objectives if OBJECTIVES[c].measured] or ["params"]
        for line in comparisons(run.reference_rows, result.frontier, costs):
            console.print(line, highlight=False)
    if not result.frontier and result.evaluations:
        reasons = {r.get("reason") for r in run.store.records.values() if r.get("reason")}
        err_console.print(
            "[yellow]no architecture satisfied every constraint;[/] "
            + (f"e.g. {sorted(reasons)[0]}" if reasons else "")
            + f" (all reasons in {run.out}/evaluated.csv)",
            highlight=False,
        )
    live = run.cost.live_accuracy() if run.device else {}
    if live:
        parts = [
            f"{name.split('_')[0]} median |err| {100 * a['median_ape']:.1f}%, "
            f"{100 * a['within_10pct']:.0f}% within 10%"
            for name, a in live.items()
        ]
        n = max(a["n"] for a in live.values())
        err_console.print(
            f"cost model on the {n} frontier entrants it predicted before they were measured: "
            + "; ".join(parts),
            highlight=False,
        )
    if run.device and s.resolution:
        err_console.print(
            f"frontier at {100 * s.resolution:g}% resolution of the measured costs "
            "(--resolution 0: the exact frontier)",
            highlight=False,
        )
    if run.unmeasured_entrants:
        err_console.print(
            f"[yellow]{run.unmeasured_entrants} architectures predicted to be on the frontier could not "
            "be measured in time;[/] the frontier above is over measured architectures only (extend the "
            "run with --resume --budget to measure them)",
            highlight=False,
        )
    if result.balance is not None:
        b = result.balance
        embedding = f", embedding {b.beta:.2f}" if b.beta else ""
        why = f" ({b.reason})" if b.reason else ""
        err_console.print(f"balance: alpha {b.alpha:.2f}, {b.aggregate}{embedding}{why}", highlight=False)
    load = run.machine_load
    if load is not None and load.busy and not run.load_told:
        err_console.print(f"[yellow]{load.describe(s.hardware.clock)}[/]", highlight=False)
    if result.stopped == "finished earlier":
        err_console.print(
            f"this run finished earlier (budget {s.budget}): reprinted, nothing evaluated; to continue "
            f"it, give a larger budget: `trainfree search --resume --out {run.out} --budget N`",
            highlight=False,
        )
        return
    _print_written(run, result)


def _print_written(run: Any, result: Any) -> None:
    """What the run wrote, and the next command: the export of a frontier model."""
    from trainfree.search.run_report import ReportWritten, export_command

    report = run.report
    shown = "report.html, " if isinstance(report, ReportWritten) else ""
    err_console.print(
        f"wrote {run.out}/{shown}frontier.csv (measured costs), frontier.json, frontier.png, "
        "evaluated.csv; configs/frontier_NNN_*.json per model",
        highlight=False,
    )
    if isinstance(report, str):
        err_console.print(f"[yellow]{report}[/]", highlight=False)
    if result.frontier:
        pick = result.frontier[len(result.frontier) // 2]["rank"]
        err_console.print(
            f"next: open {run.out}/report.html in a browser; write frontier model #{pick} with "
            f"`{export_command(run.out, pick)}`",
            highlight=False,
            soft_wrap=True,
        )


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
    cache: Annotated[bool, typer.Option(help="reuse and keep measurements on disk")] = True,
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
