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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainfree.cli_checks import (  # noqa: F401  (re-exported for cli_search)
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
    table = Table(title="proxies")
    for col in ("name", "model", "data", "gradients", "description"):
        table.add_column(col)
    for name in list_proxies():
        p = get_proxy(name)
        needs = ("yes" if x else "-" for x in (p.needs_model, p.needs_data, p.needs_grad))
        table.add_row(name, *needs, _plain(p.description))
    console.print(table)


@app.command()
def sample(
    space: Annotated[str, typer.Option(help="search space name (see `trainfree spaces`)")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of configs")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="random seed")] = 0,
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
    ] = None,
) -> None:
    """Print N sampled configs of a space as JSON lines."""
    try:
        sp = get_space(space, **_parse_sets(set_values or []))  # a bad value set: one line (_Commands)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sys.stdout.write(sp.config_to_json(sp.sample(rng)) + "\n")


@app.command()
def info(
    space: Annotated[str | None, typer.Option(help="search space (default: the config file's)")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="config JSON file")] = None,
    seq_len: Annotated[int | None, typer.Option(min=1, help="sequence length for FLOPs")] = None,
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
    table = Table(title=f"{space}: {config.name}")
    table.add_column("part")
    table.add_column("parameters", justify="right")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    table.add_row(f"flops @ {length} tokens", f"{sp.flops(cfg, length):,}")
    console.print(table)


@app.command()
def bench(
    space: Annotated[
        str, typer.Option(help="search space of the benchmark: flexibert, flexibert-published, gpt2, transxl")
    ],
    proxy: Annotated[list[str], typer.Option(help="proxy name (repeat for several)")],
    data: Annotated[
        Path | None, typer.Option(help="benchmark file or folder (default: under $TRAINFREE_DATA)")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="ground-truth field (glue, cola, ..., valid_ppl, test_ppl)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON here")] = None,
    seed: Annotated[int, typer.Option(help="seed for weights and data")] = 0,
    seq_len: Annotated[int | None, typer.Option(min=1, help="sequence length (default: the space's)")] = None,
    alpha: Annotated[
        str,
        typer.Option(
            help="balance of balanced proxies (zerolm, param_mix): heuristic (label-free default), "
            "a number in [0,1], agreement, fit:K"
        ),
    ] = "heuristic",
    repeats: Annotated[int, typer.Option(min=1, help="random fit/evaluate splits for --alpha fit:K")] = 20,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="worker processes (default: one per CPU, max 8, if a proxy builds models; 1: in-process)",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="batch size of data-dependent proxies (default: each proxy's own)"),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="score cache folder (default: $TRAINFREE_CACHE/scores, ~/.cache/trainfree/scores)"),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="neither read nor write the score cache")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="write report.md, summary.csv, scores.csv and plots/<proxy>.png to this folder"),
    ] = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    frontier: Annotated[
        list[str] | None,
        typer.Option(
            metavar="COST",
            help="also judge each proxy's picks under budgets of COST and its frontier against COST: "
            "flops, params, latency, memory (measured once per model, cached; repeatable)",
        ),
    ] = None,
) -> None:
    """Rank-correlate proxies with the trained quality of a benchmark's architectures.

    Scores are cached on disk per (architecture, proxy, settings), so an interrupted run
    resumes and a re-run (another --alpha, a --report) recomputes nothing."""
    from trainfree.benchmarks.cache import ScoreCache
    from trainfree.benchmarks.harness import run_benchmark
    from trainfree.benchmarks.loaders import load_benchmark
    from trainfree.benchmarks.selection import benchmark_costs, check_cost, judge_runs
    from trainfree.proxies.balance import parse_alpha

    try:
        strategy = parse_alpha(alpha)
        cost_names = [check_cost(c) for c in dict.fromkeys(frontier or [])]
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _check_bench_outputs(json_out, report, cache, None if no_cache or cache else ScoreCache(None).root)
    sp = _space(space)
    names = list(dict.fromkeys(list_proxies() if proxy == ["all"] else proxy))
    for name in names:
        if name not in list_proxies():
            raise _fail(f"unknown proxy '{name}'; known: {', '.join(list_proxies())}")
    try:
        benchmark = load_benchmark(sp, data, target)
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
    _check_bench_size(benchmark, strategy)
    if benchmark.skipped:
        err_console.print(f"[yellow]skipped {len(benchmark.skipped)} entries without ground truth:[/]")
        for eid, why in benchmark.skipped[:10]:
            err_console.print(f"  {eid}: {why}")
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{space} x {len(names)} proxies", total=len(benchmark))
        score_cache = None if no_cache else ScoreCache(cache)
        try:
            result = run_benchmark(
                benchmark,
                names,
                seed=seed,
                seq_len=seq_len,
                alpha=strategy,
                repeats=repeats,
                on_step=lambda i: progress.update(task, completed=i),
                workers=workers,
                cache=score_cache,
                batch_size=batch_size,
                executor=make_executor(executor, ray_address),
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            progress.stop()
            where = f"; the scores computed so far are cached in {score_cache.root}" if score_cache else ""
            err_console.print(f"[yellow]interrupted{where}: run the same command again to resume[/]")
            raise typer.Exit(code=130) from None
        costs, cost_failures, hardware = _costs(benchmark, cost_names, progress, benchmark_costs)
    runs = result.runs
    selections = judge_runs(runs, truth_of(benchmark), costs, benchmark.higher_is_better) if costs else {}

    sign = "higher" if benchmark.higher_is_better else "lower"
    table = Table(
        title=f"{space}: {len(benchmark)} architectures, ground truth {benchmark.target} ({sign} is better)",
        caption=str(benchmark.path),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    balanced = any("alpha" in run.result for run in runs.values())
    table.add_column("proxy", no_wrap=True)
    for col in ("n", "Spearman [95% CI]", "Kendall [95% CI]", "top10%", "ms/arch") + (
        ("alpha",) if balanced else ()
    ):
        table.add_column(col, justify="right", no_wrap="CI" not in col)
    for name, run in runs.items():
        r = run.result
        extra = (_balance_text(r) if "alpha" in r else "",) if balanced else ()
        table.add_row(
            name,
            str(r["n"]),
            f"{r['spearman']:.3f} {_ci(r['spearman_ci'])}",
            f"{r['kendall']:.3f} {_ci(r['kendall_ci'])}",
            f"{r['top10_precision']:.2f}",
            f"{run.seconds_per_arch * 1000:.2f}",
            *extra,
        )
    table.caption += (
        f"\n{result.wall_seconds:.1f} s, {result.workers} worker(s); {result.computed} scores computed, "
        f"{result.cached} from the cache" + (f" ({score_cache.root})" if score_cache else " (--no-cache)")
    )
    if result.invalid:
        table.caption += f"; {result.invalid} invalid cache entries recomputed"
    if any("protocol" in run.result for run in runs.values()):
        table.caption += (
            f"\nfit:K rows: mean over {repeats} splits, evaluated only on the held-out architectures"
        )
    console.print(table)
    if selections:
        _print_selection(benchmark, selections, cost_failures)
    for name, run in runs.items():
        if run.errors:
            eid, msg = next(iter(run.errors.items()))
            err_console.print(
                f"[yellow]{name} failed on {len(run.errors)} architectures[/] (e.g. {eid}: {msg})"
            )
    if json_out:
        payload = {
            "space": space,
            "data": str(benchmark.path),
            "target": benchmark.target,
            "higher_is_better": benchmark.higher_is_better,
            "n": len(benchmark),
            "skipped": [{"id": i, "reason": w} for i, w in benchmark.skipped],
            "seed": seed,
            "alpha_strategy": str(strategy),
            "wall_seconds": result.wall_seconds,
            "workers": result.workers,
            "cache": {
                "dir": str(score_cache.root) if score_cache else None,
                "computed": result.computed,
                "cached": result.cached,
                "invalid": result.invalid,
            },
            "proxies": {name: run.as_dict() for name, run in runs.items()},
        }
        if costs:
            payload["selection"] = {
                "costs": list(costs),
                "budgets": "deciles of the cost over the judged architectures (10%, 20%, ..., 100%)",
                "hardware": hardware,
                "cost_failures": cost_failures,
            }
        atomic_write_json(json_out, payload)
        err_console.print(f"wrote {json_out}")
    if report:
        from trainfree.benchmarks.report import write_report

        write_report(report, benchmark, result)
        err_console.print(f"wrote {report}/report.md, summary.csv, scores.csv and {len(runs)} plots")


def truth_of(benchmark: Any) -> np.ndarray:
    return np.array([e.ground_truth for e in benchmark.entries], dtype=np.float64)


def _costs(benchmark: Any, names: list[str], progress: Progress, compute: Any) -> tuple[dict, dict, Any]:
    """The costs ``--frontier`` asked for; latency/memory measured with the default hardware
    settings through the hardware cache, with a progress bar."""
    if not names:
        return {}, {}, None
    hardware, cache = None, None
    if {"latency", "memory"} & set(names):
        from trainfree.hardware import HardwareSettings, MeasurementCache

        hardware, cache = HardwareSettings(), MeasurementCache()
    task = progress.add_task(f"costs: {', '.join(names)}", total=len(benchmark))
    costs, failures = compute(
        benchmark, names, hardware, cache, on_step=lambda i: progress.update(task, completed=i)
    )
    return costs, failures, hardware.as_dict() if hardware else None


def _print_selection(benchmark: Any, selections: dict, failures: dict[str, str]) -> None:
    from trainfree.benchmarks.selection import cells

    table = Table(
        title=f"Picks under 10 decile budgets of a cost: regret in {benchmark.target}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in ("proxy", "cost", "regret", "frontier", "recovered", "HV"):
        table.add_column(col, justify="left" if col in ("proxy", "cost") else "right", no_wrap=True)
    for name, by_cost in selections.items():
        for cost, sel in by_cost.items():
            table.add_row(name, cost, *cells(sel))
    table.caption = (
        "regret: true quality of the best model within the budget minus the pick's (>= 0). "
        "frontier: models on the proxy's frontier / judged; recovered: true-frontier models on it "
        "/ true frontier size; HV: hypervolume of its true points / the true frontier's."
    )
    if any(s.splits for by_cost in selections.values() for s in by_cost.values()):
        table.caption += " With fit:K, every row: held-out models only, mean (± sd) over the same splits."

    console.print(table)
    if failures:
        eid, why = next(iter(failures.items()))
        err_console.print(
            f"[yellow]{len(failures)} architectures could not be measured[/] (e.g. {eid}: {why})"
        )


def _hardware_settings(
    backend: str, device: str, batch_size: int, seq_len: int, threads: int, warmup: int, repeats: int
):
    from trainfree.hardware import HardwareSettings

    cpus = os.cpu_count() or 1
    if threads > cpus:
        raise _fail(f"--threads {threads}: this machine has {cpus} CPUs; use at most {cpus}")
    try:
        return HardwareSettings(
            backend=backend,
            device=device,
            batch_size=batch_size,
            seq_len=seq_len,
            threads=threads,
            warmup=warmup,
            repeats=repeats,
        )
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None


ExecutorOpt = Annotated[
    str | None,
    typer.Option(help="where tasks run: local (default), ray (start or join a local Ray), ray://HOST:PORT"),
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="join the Ray cluster at HOST:PORT or ray://HOST:PORT (implies Ray)")
]
MeasureOnOpt = Annotated[
    str | None,
    typer.Option(help="measure on the Ray nodes carrying this resource, e.g. pi4 (implies Ray)"),
]


def make_executor(spec: str | None, address: str | None, measure_on: str | None = None):
    """The executor the options ask for (:mod:`trainfree.executors`), or one line, exit 2."""
    from rich.markup import escape

    from trainfree.executors import make_executor as make

    try:
        return make(spec, address, measure_on, notify=lambda m: err_console.print(f"[yellow]{escape(m)}[/]"))
    except TrainfreeError as exc:
        raise _fail(escape(str(exc))) from None


BackendOpt = Annotated[str, typer.Option(help="torch (PyTorch eager) or onnx (ONNX Runtime, CPU)")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda")]
BatchOpt = Annotated[int, typer.Option(min=1, help="batch size of the measured forward pass")]
SeqOpt = Annotated[int, typer.Option(min=1, help="sequence length of the measured forward pass")]
ThreadsOpt = Annotated[int, typer.Option(min=1, help="CPU threads for the measured forward pass")]
WarmupOpt = Annotated[int, typer.Option(min=0, help="untimed warm-up runs")]
RepeatsOpt = Annotated[int, typer.Option(min=1, help="timed runs (the median is reported)")]


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
    cache: Annotated[bool, typer.Option(help="reuse/store the measurement in the on-disk cache")] = True,
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
    settings = _hardware_settings(backend, device, batch_size, seq_len, threads, warmup, repeats)
    ex = make_executor(executor, ray_address, measure_on)
    try:
        got, store = [], MeasurementCache() if cache else None
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
    table = Table(
        title=f"{sp.name}: {config.name} on {settings.name} (batch {batch_size}, {seq_len} tokens, "
        f"{threads} thread{'s' if threads > 1 else ''})",
        caption=f"{machine['cpu']}, {machine['cores']} cores"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
        + (" (from cache)" if cached else "")
        + (f", node {node}" if node not in (None, "local") else ""),
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"latency, median of {repeats}", f"{m.latency_ms:.2f} ms")
    table.add_row("latency, quartiles", f"{m.latency_p25_ms:.2f} - {m.latency_p75_ms:.2f} ms")
    table.add_row("latency, fastest", f"{m.latency_min_ms:.2f} ms")
    how = "GPU allocator peak" if m.memory_method.startswith("cuda") else "process peak resident memory"
    table.add_row("peak memory: weights + activations", f"{m.memory_mb:.1f} MB")
    table.add_row("  weights (float32 parameters)", f"{m.weights_mb:.1f} MB")
    table.add_row(f"  activations ({how})", f"{m.activation_mb:.1f} MB")
    table.add_row("parameters", f"{sp.param_counts(cfg).total:,}")
    console.print(table)
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


def _balance_text(r: dict[str, Any]) -> str:
    """``0.43 sum`` or, where the embedding takes part, ``0.43 sum +0.30E``."""
    text = f"{r['alpha']:.2f} {r['aggregate']}"
    return text + (f" +{r['beta']:.2f}E" if r.get("beta") else "")


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.2f},{ci[1]:.2f}]"


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="folder to write (refused if not empty, unless --force)")],
    space: Annotated[str | None, typer.Option(help="space of --config (default: the file's own)")] = None,
    config: Annotated[
        Path | None, typer.Option(dir_okay=False, help="config JSON file (bare, or {space, config})")
    ] = None,
    run: Annotated[Path | None, typer.Option(help="search run directory (reads its frontier)")] = None,
    pick: Annotated[str | None, typer.Option(help="with --run: frontier row number, or all")] = None,
    fmt: Annotated[str, typer.Option("--format", help="hf (transformers folder) or onnx")] = "hf",
    as_: Annotated[
        str, typer.Option("--as", help="trainfree (any config) or gpt2 (stock GPT2LMHeadModel)")
    ] = "trainfree",
    seed: Annotated[
        int | None, typer.Option(help="weights of space.build(config, seed); default 0, or the run's seed")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty --out")] = False,
) -> None:
    """Write an architecture as a Hugging Face transformers model folder, or as ONNX."""
    from trainfree.export import export_config, export_run, read_config_file, resolve_config

    try:
        if (config is None) == (run is None):
            raise TrainfreeError("give either --config FILE (with --space) or --run RUN_DIR --pick N|all")
        if run is not None:
            if pick is None:
                raise TrainfreeError("--run needs --pick N (a frontier row) or --pick all")
            results = export_run(run, pick, out, fmt=fmt, as_=as_, force=force, seed=seed)
        else:
            file_space, data = read_config_file(config)
            name = space or file_space
            if name is None:
                raise TrainfreeError(f"{config} does not name its space; pass --space")
            if file_space is not None and name != file_space:
                raise TrainfreeError(f"{config} is a config of space '{file_space}', not '{name}'")
            sp = _space(name)
            cfg = resolve_config(sp, data, str(config))
            results = [export_config(sp, cfg, out, fmt=fmt, as_=as_, force=force, seed=seed or 0)]
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
    for r in results:
        err_console.print(
            f"wrote {r.out} ({r.model_type}, {r.params:,} parameters, {r.seconds:.1f} s; "
            f"max abs diff to trainfree {r.max_abs_diff:.1e})",
            highlight=False,
        )


from trainfree import cli_search  # noqa: E402,F401  (registers `search` and `calibrate`)


def main() -> None:  # pragma: no cover - thin wrapper for `python -m trainfree`
    from trainfree.cli import app as registered  # the module's app (also when run as __main__)

    registered()


if __name__ == "__main__":  # pragma: no cover
    main()
