"""The ``calibrate`` command: it parses options and prints; measuring a calibration sample and
fitting the cost model belong to :mod:`trainfree.hardware.calibration`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trainfree.cli.boundary import console, err_console, fail
from trainfree.cli.checks import check_writable
from trainfree.cli.costmodel import accuracy_table
from trainfree.cli.inputs import hardware_settings, load_space, make_executor
from trainfree.cli.options import (
    MEASUREMENT,
    SEARCH_REPEATS,
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
    SetOpt,
    ThreadsOpt,
    WarmupOpt,
)


def calibrate(
    space: Annotated[str, typer.Option(help="search space name")] = "gpt2",
    n: Annotated[int, typer.Option("-n", min=12, help="architectures to measure")] = 60,
    seed: Annotated[int, typer.Option(min=0, help="seed of the calibration sample and weights")] = 0,
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = SEARCH_WARMUP,
    repeats: RepeatsOpt = SEARCH_REPEATS,
    generate: Annotated[
        bool, typer.Option("--generate", help="calibrate generation costs (prefill, decode, memory at C)")
    ] = False,
    prompt_len: PromptOpt = 128,
    context: ContextOpt = 512,
    new_tokens: NewTokensOpt = 16,
    quantize: QuantizeOpt = "none",
    set_values: SetOpt = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="neither reuse nor keep measurements", rich_help_panel=MEASUREMENT),
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
    from trainfree.hardware.settings import get_backend
    from trainfree.search.settings import MAX_REPEATS_FACTOR

    cache = not no_cache
    hw = hardware_settings(
        *(backend, device, batch_size, seq_len, threads, warmup, repeats, MAX_REPEATS_FACTOR * repeats),
        mode="generate" if generate else "forward",
        prompt_len=prompt_len,
        context=context,
        new_tokens=new_tokens,
        quantize=quantize,
    )
    if cache:  # what calibrate is for: measurements kept for this machine; check before measuring
        check_writable(MeasurementCache().root, "the hardware cache ($TRAINFREE_CACHE)", folder=True)
    sp = load_space(space, set_values)
    why = get_backend(hw.backend).space_error(space)
    if why:
        raise fail(why)
    ex = make_executor(executor, ray_address, measure_on)
    try:
        ex.check_device(device)
        rows_cache = RowCache(sp, hw, machine=ex.machine(device)) if cache else None
        model, errors = _calibrate(sp, hw, n, seed, cache, rows_cache, ex)
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
            raise fail(f"no cost model: {exc}") from None
    return model, errors
