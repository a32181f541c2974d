"""The ``trainfree`` command line: ``spaces``, ``proxies``, ``sample``, ``info``, ``bench``,
``profile`` and ``search``.

Spaces and proxies are discovered from their registries, so a new one appears here with no
edit to this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainfree.errors import TrainfreeError
from trainfree.io import atomic_write_json
from trainfree.proxies import get_proxy, list_proxies
from trainfree.spaces import get_space, list_spaces

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Training-free Transformer architecture search: proxies, benchmarks, search.",
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _space(name: str):
    try:
        return get_space(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None


def _config_file(sp, path: Path):
    """The typed config in a JSON file, or a clear error naming the file and the field."""
    try:
        return sp.config_from_json(path.read_text())
    except TrainfreeError as exc:
        raise _fail(f"{path}: {exc}") from None


@app.command()
def spaces() -> None:
    """List the registered search spaces and their value sets."""
    for name in list_spaces():
        sp = get_space(name)
        table = Table(
            title=f"{name}: {(type(sp).__doc__ or '').strip().splitlines()[0]}", title_justify="left"
        )
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
        table.add_row(
            name, *("yes" if x else "-" for x in (p.needs_model, p.needs_data, p.needs_grad)), p.description
        )
    console.print(table)


@app.command()
def sample(
    space: Annotated[str, typer.Option(help="search space name (see `trainfree spaces`)")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of configs")] = 1,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Print N sampled configs of a space as JSON lines."""
    sp = _space(space)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sys.stdout.write(sp.config_to_json(sp.sample(rng)) + "\n")


@app.command()
def info(
    space: Annotated[str, typer.Option(help="search space name")],
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="config JSON file")],
    seq_len: Annotated[int | None, typer.Option(min=1, help="sequence length for FLOPs")] = None,
) -> None:
    """Parameter counts by sub-module and FLOPs of one config."""
    sp = _space(space)
    cfg = _config_file(sp, config)
    counts = sp.param_counts(cfg).as_dict()
    length = seq_len or sp.max_seq_len(cfg)
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
) -> None:
    """Rank-correlate proxies with the trained quality of a benchmark's architectures.

    Scores are cached on disk per (architecture, proxy, settings), so an interrupted run
    resumes and a re-run (another --alpha, a --report) recomputes nothing."""
    from trainfree.benchmarks.cache import ScoreCache
    from trainfree.benchmarks.harness import run_benchmark
    from trainfree.benchmarks.loaders import load_benchmark
    from trainfree.proxies.balance import parse_alpha

    try:
        strategy = parse_alpha(alpha)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    sp = _space(space)
    names = list(dict.fromkeys(list_proxies() if proxy == ["all"] else proxy))
    for name in names:
        if name not in list_proxies():
            raise _fail(f"unknown proxy '{name}'; known: {', '.join(list_proxies())}")
    try:
        benchmark = load_benchmark(sp, data, target)
    except TrainfreeError as exc:
        raise _fail(str(exc)) from None
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
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            progress.stop()
            where = f"; the scores computed so far are cached in {score_cache.root}" if score_cache else ""
            err_console.print(f"[yellow]interrupted{where}: run the same command again to resume[/]")
            raise typer.Exit(code=130) from None
    runs = result.runs

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
        atomic_write_json(json_out, payload)
        err_console.print(f"wrote {json_out}")
    if report:
        from trainfree.benchmarks.report import write_report

        write_report(report, benchmark, result)
        err_console.print(f"wrote {report}/report.md, summary.csv, scores.csv and {len(runs)} plots")


def _hardware_settings(
    backend: str, device: str, batch_size: int, seq_len: int, threads: int, warmup: int, repeats: int
):
    from trainfree.hardware import HardwareSettings

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


BackendOpt = Annotated[str, typer.Option(help="torch (PyTorch eager) or onnx (ONNX Runtime, CPU)")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda")]
BatchOpt = Annotated[int, typer.Option(min=1, help="batch size of the measured forward pass")]
SeqOpt = Annotated[int, typer.Option(min=1, help="sequence length of the measured forward pass")]
ThreadsOpt = Annotated[int, typer.Option(min=1, help="CPU threads for the measured forward pass")]
WarmupOpt = Annotated[int, typer.Option(min=0, help="untimed warm-up runs")]
RepeatsOpt = Annotated[int, typer.Option(min=1, help="timed runs (the median is reported)")]


@app.command()
def profile(
    space: Annotated[str, typer.Option(help="search space name")],
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="config JSON file")],
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
) -> None:
    """Measure latency and peak memory of one architecture on this machine."""
    from trainfree.hardware import MeasurementCache, machine_info, measure_cached

    sp = _space(space)
    cfg = _config_file(sp, config)
    settings = _hardware_settings(backend, device, batch_size, seq_len, threads, warmup, repeats)
    with console.status(f"measuring {config.name} on {settings.name} ..."):
        m, cached = measure_cached(sp, cfg, settings, MeasurementCache() if cache else None)
    machine = machine_info(device)
    if not m.ok:
        raise _fail(f"{config.name} cannot be measured on {settings.name}: {m.error}")
    table = Table(
        title=f"{space}: {config.name} on {settings.name} (batch {batch_size}, {seq_len} tokens, "
        f"{threads} thread{'s' if threads > 1 else ''})",
        caption=f"{machine['cpu']}, {machine['cores']} cores"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
        + (" (from cache)" if cached else ""),
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"latency, median of {repeats}", f"{m.latency_ms:.2f} ms")
    table.add_row("latency, quartiles", f"{m.latency_p25_ms:.2f} - {m.latency_p75_ms:.2f} ms")
    table.add_row("latency, fastest", f"{m.latency_min_ms:.2f} ms")
    table.add_row(f"peak memory of the forward pass ({m.memory_method})", f"{m.memory_mb:.1f} MB")
    table.add_row("weights", f"{m.weights_mb:.1f} MB")
    table.add_row("parameters", f"{sp.param_counts(cfg).total:,}")
    console.print(table)
    if json_out:
        atomic_write_json(
            json_out,
            {
                "space": space,
                "config": sp.config_to_dict(cfg),
                "settings": settings.as_dict(),
                "machine": machine,
                "cached": cached,
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


def _saved_settings(out: Path) -> dict | None:
    path = out / "settings.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise _fail(f"{path} is not valid JSON; choose another --out") from None


@app.command()
def search(
    out: Annotated[Path, typer.Option(help="run directory (created; holds results and checkpoints)")],
    space: Annotated[str, typer.Option(help="search space name")] = "gpt2",
    proxy: Annotated[str, typer.Option(help="proxy to maximise (see `trainfree proxies`)")] = "zerolm",
    objectives: Annotated[
        str, typer.Option(help="costs to minimise, comma-separated: latency, memory, params, flops")
    ] = "latency,memory",
    device: DeviceOpt = "cpu",
    backend: BackendOpt = "torch",
    budget: Annotated[
        str | None, typer.Option(help="evaluations (e.g. 200) or wall time (90s, 10m, 1h); default 4m")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in --out with its saved settings")
    ] = False,
    alpha: Annotated[
        str, typer.Option(help="balance of a balanced proxy: heuristic or a number")
    ] = "heuristic",
    pop_size: Annotated[int, typer.Option(min=4, help="population size (architectures per generation)")] = 12,
    seed: Annotated[int, typer.Option(help="random seed (search and weights)")] = 0,
    workers: Annotated[int | None, typer.Option(min=1, help="parallel proxy workers (default 1)")] = None,
    algorithm: Annotated[str, typer.Option(help="nsga2, or random (the baseline)")] = "nsga2",
    max_latency_ms: Annotated[float | None, typer.Option(help="constraint: latency at most this")] = None,
    max_memory_mb: Annotated[float | None, typer.Option(help="constraint: peak memory at most this")] = None,
    max_params: Annotated[float | None, typer.Option(help="constraint: parameters at most this")] = None,
    batch_size: BatchOpt = 1,
    seq_len: SeqOpt = 192,
    threads: ThreadsOpt = 1,
    warmup: WarmupOpt = 1,
    repeats: RepeatsOpt = 5,
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=[v1,v2,...]")
    ] = None,
    cache: Annotated[bool, typer.Option(help="reuse hardware measurements cached on disk")] = True,
) -> None:
    """Search a space for the Pareto frontier of proxy score vs measured latency/memory."""
    from trainfree.search import SearchRun, SearchSettings

    try:
        if resume:
            run = SearchRun.resume(out, budget=budget, workers=workers)
        else:
            settings = SearchSettings(
                space=space,
                space_values=_parse_sets(set_values or []),
                proxy=proxy,
                alpha=alpha,
                objectives=[o.strip() for o in objectives.split(",") if o.strip()],
                hardware=_hardware_settings(backend, device, batch_size, seq_len, threads, warmup, repeats),
                max_latency_ms=max_latency_ms,
                max_memory_mb=max_memory_mb,
                max_params=max_params,
                budget=budget or "4m",
                pop_size=pop_size,
                seed=seed,
                workers=workers or 1,
                algorithm=algorithm,
                use_cache=cache,
            )
            if space not in list_spaces():
                raise _fail(f"unknown space '{space}'; known: {', '.join(list_spaces())}")
            saved = _saved_settings(out)
            asked = json.loads(json.dumps(settings.to_dict()))  # as settings.json holds it
            if saved is None:
                run = SearchRun.create(out, settings)
            elif saved == asked:
                resume = True  # the same command again continues (or just reprints) its run
                run = SearchRun.resume(out)
            else:
                differ = sorted(k for k in saved if saved.get(k) != asked.get(k))
                raise _fail(
                    f"{out} already holds a search run with other settings ({', '.join(differ)}); "
                    f"continue it with `trainfree search --resume --out {out}` or choose another --out"
                )
    except TrainfreeError as exc:  # RunDirError included
        raise _fail(str(exc)) from None
    s = run.settings
    err_console.print(
        f"[bold]search[/] {s.space}: maximise {s.proxy}, minimise {', '.join(s.objectives)} on "
        f"{s.hardware.name} (batch {s.hardware.batch_size}, {s.hardware.seq_len} tokens), "
        f"{s.algorithm}, population {s.pop_size}, budget {s.budget}, seed {s.seed} -> {run.out}"
        + (f" (resuming at generation {run.generation}, {len(run.store)} evaluated)" if resume else ""),
        highlight=False,
    )
    evals, seconds = run.budget_evals, run.budget_seconds
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task("search", total=evals or seconds, status="starting")

        def on_progress(p) -> None:
            done = p.evaluations if evals else min(p.elapsed, seconds or 0)
            progress.update(
                task,
                completed=done,
                description=f"generation {p.generation}",
                status=f"{p.evaluations} evaluated | frontier {p.frontier_size} | HV {p.hypervolume:.3f}",
            )

        result = run.run(on_progress=on_progress)
    table = Table(
        title=f"Pareto frontier: {len(result.frontier)} of {result.evaluations} architectures "
        f"({result.generations} generations, {result.elapsed:.0f} s, {result.stopped})",
        box=box.SIMPLE_HEAD,
    )
    cols = [
        ("rank", "rank"),
        (s.proxy, s.proxy),
        ("latency ms", "latency_ms"),
        ("memory MB", "memory_mb"),
        ("params", "params"),
        ("config", "config_file"),
    ]
    for title, _ in cols:
        table.add_column(title, justify="left" if title == "config" else "right")
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
    if not result.frontier:
        reasons = {r.get("reason") for r in run.store.records.values() if r.get("reason")}
        err_console.print(
            "[yellow]no architecture satisfied every constraint;[/] "
            + (f"e.g. {sorted(reasons)[0]}" if reasons else "")
            + f" (all reasons in {run.out}/evaluated.csv)",
            highlight=False,
        )
    if result.balance is not None:
        err_console.print(
            f"balance: alpha {result.balance.alpha:.3f}, aggregation {result.balance.aggregate}"
        )
    err_console.print(
        f"wrote {run.out}/frontier.csv, frontier.json, frontier.png, evaluated.csv and configs/ "
        f"(build one: space.build(space.config_from_json(open(FILE).read())))",
        highlight=False,
    )


def _balance_text(r: dict[str, Any]) -> str:
    """``0.43 sum`` or, where the embedding takes part, ``0.43 sum +0.30E``."""
    text = f"{r['alpha']:.2f} {r['aggregate']}"
    return text + (f" +{r['beta']:.2f}E" if r.get("beta") else "")


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.2f},{ci[1]:.2f}]"


def main() -> None:  # pragma: no cover - thin wrapper for `python -m trainfree`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
