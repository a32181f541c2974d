"""The ``bench`` command: it parses options and prints; scoring, balancing and judging belong to
:mod:`trainfree.bench`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from trainfree.cli.boundary import console, err_console, fail
from trainfree.cli.checks import check_bench_outputs, check_bench_size
from trainfree.cli.inputs import load_space, make_executor
from trainfree.cli.options import ExecutorOpt, RayAddressOpt
from trainfree.io import atomic_write_json
from trainfree.registry import unknown

if TYPE_CHECKING:
    import numpy as np

#: seconds per architecture of `--proxy all` (every proxy) with 2 workers on a 2-core CPU:
#: 5.4 (flexibert-published), 6.6 (gpt2), 16.6 (transxl) measured alone, up to 20 s beside
#: other work (docs/benchmarks.md, "Every proxy on the three benchmarks")
ALL_SECONDS_PER_ARCH = (5.0, 20.0)


def expected_duration(n: int, proxies: int) -> str:
    """What `--proxy all` will take, said before it starts."""
    lo, hi = (n * s / 60 for s in ALL_SECONDS_PER_ARCH)
    return (
        f"--proxy all: {proxies} proxies on {n} architectures; expect {lo:.0f}-{hi:.0f} minutes on a "
        "2-core CPU (5-20 s per architecture measured there), less for scores already in the cache; "
        "Ctrl-C keeps what is done"
    )


class TimeLeftColumn(ProgressColumn):
    """Time left from the mean time per architecture so far (rich's own estimate waits for a
    speed measured within 30 s, and showed -:--:-- for minutes when each architecture is slow)."""

    def render(self, task: Any) -> Text:
        done, total, elapsed = task.completed, task.total, task.elapsed
        if not done or not total or elapsed is None:
            return Text("left -:--:--", style="progress.remaining")
        left = int(elapsed / done * (total - done))
        return Text(f"left {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}", style="progress.remaining")


def bench(
    space: Annotated[
        str, typer.Option(help="search space whose benchmark to judge on (see `trainfree spaces`)")
    ],
    proxy: Annotated[
        list[str],
        typer.Option(
            help="proxy name (repeat for several), or `all`: every proxy, long "
            "(5-20 s per architecture on 2 cores: 17-67 min for gpt2's 200)"
        ),
    ],
    data: Annotated[
        Path | None, typer.Option(help="benchmark file or folder (default: under $TRAINFREE_DATA)")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="ground-truth field (default: the first of the space's targets in `spaces`)"),
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
    from trainfree.bench.loaders import load_benchmark
    from trainfree.bench.selection import judge_runs
    from trainfree.runtime.score_cache import ScoreCache

    strategy, cost_names = _judging(alpha, frontier)
    check_bench_outputs(json_out, report, cache, None if no_cache or cache else ScoreCache(None).root)
    sp = load_space(space)
    names = _proxy_names(proxy)
    benchmark = load_benchmark(sp, data, target)
    check_bench_size(benchmark, strategy)
    if benchmark.skipped:
        err_console.print(f"[yellow]skipped {len(benchmark.skipped)} entries without ground truth:[/]")
        for eid, why in benchmark.skipped[:10]:
            err_console.print(f"  {eid}: {why}")
    if proxy == ["all"]:
        err_console.print(expected_duration(len(benchmark), len(names)), highlight=False)
    score_cache = None if no_cache else ScoreCache(cache)
    scoring = {"seed": seed, "seq_len": seq_len, "alpha": strategy, "repeats": repeats, "workers": workers}
    scoring.update(cache=score_cache, batch_size=batch_size)
    result, (costs, cost_failures, hardware) = _score(
        f"{space} x {len(names)} proxies", benchmark, names, cost_names, scoring, (executor, ray_address)
    )
    runs = result.runs
    selections = judge_runs(runs, truth_of(benchmark), costs, benchmark.higher_is_better) if costs else {}
    _print_correlations(space, benchmark, result, score_cache, repeats)
    if selections:
        _print_selection(benchmark, selections, cost_failures)
    _print_failures(runs)
    if json_out:
        from trainfree.bench.report import run_payload

        cache_dir = score_cache.root if score_cache else None
        payload = run_payload(
            space,
            benchmark,
            result,
            seed=seed,
            alpha=strategy,
            cache_dir=cache_dir,
            costs=list(costs),
            hardware=hardware,
            cost_failures=cost_failures,
        )
        atomic_write_json(json_out, payload)
        err_console.print(f"wrote {json_out}")
    if report:
        from trainfree.bench.report import write_report

        write_report(report, benchmark, result)
        err_console.print(f"wrote {report}/report.md, summary.csv, scores.csv and {len(runs)} plots")


def _print_failures(runs: dict[str, Any]) -> None:
    """One line per proxy that failed on some architectures, with the first failure."""
    for name, run in runs.items():
        if run.errors:
            eid, msg = next(iter(run.errors.items()))
            err_console.print(
                f"[yellow]{name} failed on {len(run.errors)} architectures[/] (e.g. {eid}: {msg})"
            )


def _judging(alpha: str, frontier: list[str] | None) -> tuple[Any, list[str]]:
    """``--alpha`` as a balance strategy and ``--frontier`` as cost names, or one line."""
    from trainfree.bench.selection import check_cost
    from trainfree.proxies.balance import parse_alpha

    try:
        return parse_alpha(alpha), [check_cost(c) for c in dict.fromkeys(frontier or [])]
    except ValueError as exc:
        raise fail(str(exc)) from None


def _proxy_names(proxy: list[str]) -> list[str]:
    """The proxies asked for (``all``: every registered one), each known, each once."""
    from trainfree.proxies import list_proxies

    names = list(dict.fromkeys(list_proxies() if proxy == ["all"] else proxy))
    for name in names:
        if name not in list_proxies():
            raise fail(unknown("proxy", name, list_proxies()))
    return names


def _score(
    label: str,
    benchmark: Any,
    names: list[str],
    cost_names: list[str],
    scoring: dict[str, Any],
    where: tuple[str | None, str | None],
) -> tuple[Any, tuple[dict, dict, Any]]:
    """Score every architecture with every proxy, then measure the ``--frontier`` costs, under
    one progress display: ``(result, (costs, cost failures, hardware settings))``. Ctrl-C
    keeps the scores done (they are cached) and says how to resume."""
    from trainfree.bench.harness import run_benchmark
    from trainfree.bench.selection import benchmark_costs

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeLeftColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=len(benchmark))
        try:
            result = run_benchmark(
                benchmark,
                names,
                on_step=lambda i: progress.update(task, completed=i),
                executor=make_executor(*where),
                **scoring,
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            progress.stop()
            score_cache = scoring["cache"]
            where_kept = (
                f"; the scores computed so far are cached in {score_cache.root}" if score_cache else ""
            )
            err_console.print(f"[yellow]interrupted{where_kept}: run the same command again to resume[/]")
            raise typer.Exit(code=130) from None
        return result, _costs(benchmark, cost_names, progress, benchmark_costs)


def _print_correlations(space: str, benchmark: Any, result: Any, score_cache: Any, repeats: int) -> None:
    """The main table: each proxy's rank correlations with the ground truth, and its speed."""
    runs = result.runs
    sign = "higher" if benchmark.higher_is_better else "lower"
    table = Table(
        title=f"{space}: {len(benchmark)} architectures, ground truth {benchmark.target} ({sign} is better)",
        caption=str(benchmark.path),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("proxy", no_wrap=True)
    for col in ("n", "Spearman", "95% CI", "Kendall", "95% CI", "top10%", "ms/arch"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, run in runs.items():
        r = run.result
        table.add_row(
            name,
            str(r["n"]),
            f"{r['spearman']:.3f}",
            _ci(r["spearman_ci"]),
            f"{r['kendall']:.3f}",
            _ci(r["kendall_ci"]),
            f"{r['top10_precision']:.2f}",
            f"{run.seconds_per_arch * 1000:.2f}",
        )
    balances = [f"{n}: alpha {_balance_text(run.result)}" for n, run in runs.items() if "alpha" in run.result]
    if balances:
        table.caption += "\n" + "; ".join(balances)
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
    own = [n for n, r in runs.items() if "protocol" in r.result and r.result["alpha_strategy"] == "heuristic"]
    if own:
        table.caption += f"\n{', '.join(own)}: default fitted on this benchmark, so judged held out, as fit:K"
    console.print(table)


def truth_of(benchmark: Any) -> np.ndarray:
    """The ground truth of every entry, in the benchmark's order."""
    import numpy as np

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
    from trainfree.bench.selection import cells

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


def _balance_text(r: dict[str, Any]) -> str:
    """``0.43 sum`` or, where the embedding takes part, ``0.43 sum +0.30E``."""
    text = f"{r['alpha']:.2f} {r['aggregate']}"
    return text + (f" +{r['beta']:.2f}E" if r.get("beta") else "")


def _ci(ci: tuple[float, float]) -> str:
    return f"{ci[0]:.2f}-{ci[1]:.2f}" if ci[0] >= 0 else f"{ci[0]:.2f} to {ci[1]:.2f}"
