"""The ``search`` command: it parses options and prints; opening or continuing a run and
searching belong to :mod:`trainfree.search`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from trainfree.cli.boundary import err_console, fail
from trainfree.cli.inputs import hardware_settings, make_executor, parse_sets
from trainfree.cli.options import (
    MEASUREMENT,
    SEARCH,
    SEARCH_REPEATS,
    SEARCH_RESOLUTION_PCT,
    SEARCH_WARMUP,
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
    algorithm_help,
    objectives_help,
    opt,
)
from trainfree.registry import unknown


def default_workers() -> int:
    """One worker per available CPU, at most 8: the same default as ``bench``."""
    from trainfree.runtime.workers import cpu_workers

    return cpu_workers()


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
            raise fail(
                f"{flag}: --resume continues the run in {out} with its saved settings, which it cannot "
                f"change; drop {flag}, or start a new run in another --out"
            )


def search(
    ctx: typer.Context,
    out: Annotated[Path, opt("run directory: results and checkpoints")],
    space: Annotated[str, opt("search space (see `spaces`)")] = "gpt2",
    proxy: Annotated[str, opt("proxy to maximise (see `proxies`)")] = "zerolm",
    objectives: Annotated[str, opt(objectives_help())] = "latency,memory",
    max_: Annotated[list[str] | None, opt("limit, e.g. latency=50ms, memory=300MB", SEARCH, "--max")] = None,
    budget: Annotated[str | None, opt("evaluations (3000) or time (90s, 10m, 1h); default 4m")] = None,
    resume: Annotated[bool, opt("continue the run in --out", SEARCH, "--resume")] = False,
    alpha: Annotated[str, opt("balance of zerolm: heuristic or a number")] = "heuristic",
    seed: Annotated[int, opt("random seed (search and weights)", min=0)] = 0,
    algorithm: Annotated[str, opt(algorithm_help())] = "nsga2",
    pop_size: Annotated[int | None, opt("models per generation (default: by budget)", min=4)] = None,
    resolution: Annotated[
        float, opt("% by which frontier costs must differ (0: exact)", metavar="PCT")
    ] = SEARCH_RESOLUTION_PCT,
    set_values: Annotated[
        list[str] | None, opt("narrow a value set: NAME=JSON-list", SEARCH, "--set")
    ] = None,
    workers: Annotated[int | None, opt("proxy processes (default: one per CPU)", min=1)] = None,
    costs: Annotated[str, opt("predicted (by a cost model) or measured", MEASUREMENT)] = "predicted",
    calibration: Annotated[
        int | None, opt("models measured to fit the cost model", MEASUREMENT, min=12)
    ] = None,
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = SEARCH_WARMUP,
    repeats: RepeatsOpt = SEARCH_REPEATS,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    no_cache: Annotated[
        bool, opt("cache no scores, measurements, cost models", MEASUREMENT, "--no-cache")
    ] = False,
    max_latency_ms: Annotated[float | None, opt("same as --max latency=VALUE", hidden=True)] = None,
    max_memory_mb: Annotated[float | None, opt("same as --max memory=VALUE", hidden=True)] = None,
    max_params: Annotated[float | None, opt("same as --max params=VALUE", hidden=True)] = None,
    measure_on: MeasureOnOpt = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Search a space for the Pareto frontier of proxy score vs latency/memory on this device."""
    from trainfree.executors.base import measured_elsewhere
    from trainfree.search import SearchRun

    if resume:
        _check_resume_options(ctx, out)
    hardware = {"backend": backend, "device": device, "batch_size": batch_size, "seq_len": seq_len}
    hardware.update(threads=threads, warmup=warmup, repeats=repeats, prompt_len=prompt_len)
    hardware.update(context=context, new_tokens=new_tokens, quantize=quantize)
    try:
        settings = None
        if not resume:
            settings = _new_settings(
                space=space,
                set_values=set_values or [],
                proxy=proxy,
                alpha=alpha,
                objectives=objectives,
                limits=(max_ or [], hidden_limits(max_latency_ms, max_memory_mb, max_params)),
                hardware=hardware,
                costs=costs,
                budget=budget,
                pop_size=pop_size,
                calibration=calibration,
                seed=seed,
                workers=workers,
                algorithm=algorithm,
                use_cache=not no_cache,
                resolution=resolution,
            )
    except RecursionError:
        raise fail("a --set value is nested too deeply") from None
    ex = make_executor(executor, ray_address, measure_on)  # connects; nothing is written before
    try:
        if resume:
            run = SearchRun.open(out, budget=budget, workers=workers, executor=ex)
        else:
            run = SearchRun.open(out, settings, executor=ex)
        note = measured_elsewhere((r.measured_on for r in run.records()), ex)
        if note:
            err_console.print(f"[yellow]{note}[/]", highlight=False)
        code = _run_search(run, resumed=bool(run.store))
    finally:
        ex.close()
    if code:
        raise typer.Exit(code=code)


def hidden_limits(
    latency_ms: float | None, memory_mb: float | None, params: float | None
) -> dict[str, float]:
    """The hidden ``--max-latency-ms``, ``--max-memory-mb`` and ``--max-params`` options as
    ``{objective: maximum}`` in the objectives' units (typed already: nothing parses them again)."""
    given = (("latency", latency_ms), ("memory", memory_mb), ("params", params))
    return {name: value for name, value in given if value is not None}


def _new_settings(
    space: str,
    set_values: list[str],
    objectives: str,
    limits: tuple[list[str], dict[str, float]],
    hardware: dict[str, Any],
    budget: str | None,
    workers: int | None,
    resolution: float,
    **options: Any,
) -> Any:
    """The settings of a new run from the options, validated before anything is written:
    ``limits``: the ``--max`` texts, and the values of the hidden ``--max-*`` options."""
    from trainfree.objectives import parse_limits, unitless_limits
    from trainfree.search.settings import MAX_REPEATS_FACTOR, SearchSettings
    from trainfree.spaces import list_spaces

    if space not in list_spaces():
        raise fail(unknown("space", space, list_spaces()))
    if not 0 <= resolution <= 99:
        raise fail(f"--resolution {resolution:g}: expected a percent from 0 to 99")
    max_texts, hidden = limits
    parsed = parse_limits(max_texts)
    for note in unitless_limits(max_texts):
        err_console.print(note, highlight=False)
    return SearchSettings.parse(  # generation objectives switch the hardware to generate
        space=space,
        space_values=parse_sets(set_values),
        objectives=objectives,
        hardware=hardware_settings(**hardware, max_repeats=MAX_REPEATS_FACTOR * hardware["repeats"]),
        limits={**parsed, **hidden},
        budget=budget or "4m",
        workers=workers or default_workers(),
        resolution=resolution / 100.0,
        **options,
    )


def _print_header(run: Any, resumed: bool) -> None:
    """The line that says what the run searches, how and where, before its progress line."""
    from trainfree.objectives import limit_text

    s = run.settings
    limits = ", ".join(limit_text(k, v) for k, v in run.limits.items())
    err_console.print(
        f"[bold]search[/] {s.space}: maximise {s.proxy}, minimise {', '.join(s.objectives)}"
        + (f" ({limits})" if limits else "")
        + f" on {s.hardware.name} (batch {s.hardware.batch_size}, {s.hardware.workload}"
        + ("" if run.executor.runs_here else f"; {run.executor.describe()}")
        + "), "
        f"costs {s.costs if run.device else 'analytic'}, {s.algorithm}, budget {s.budget}, seed {s.seed}"
        + (f" (continuing: {len(run.store)} evaluated)" if resumed else ""),
        highlight=False,
    )


def _run_search(run: Any, resumed: bool) -> int:
    """Run the search with its progress line and print its frontier: the exit code (0, or
    130/143 when Ctrl-C or SIGTERM stopped it; what finished is kept)."""
    from trainfree.cli.costmodel import accuracy_table
    from trainfree.cli.frontier import print_frontier
    from trainfree.cli.progress import SearchDisplay, process_started

    _print_header(run, resumed)
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
            print_frontier(run, result)
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
