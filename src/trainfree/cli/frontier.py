"""What ``trainfree search`` prints at its end: the frontier table (numbered as
frontier.csv, report.html and frontier.png number it), the reference models, the cost
model's accuracy on the frontier, what was written and the next command."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from trainfree.cli.boundary import console, err_console


def frontier_table(run: Any, result: Any) -> Table:
    """The frontier as printed: one row per frontier model, numbered as in frontier.csv,
    report.html and frontier.png; the predicted quality where the space has a benchmark."""
    s = run.settings
    table = Table(
        title=f"Pareto frontier: {len(result.frontier)} of {result.evaluations} architectures "
        f"({result.generations} generations, {result.elapsed:.0f} s, {result.stopped})",
        box=box.SIMPLE_HEAD,
    )
    generating = s.hardware.mode == "generate"
    predicted = next((m["predicted"] for m in result.frontier if m.get("predicted")), None)
    target = predicted["target"] if predicted else ""
    quality = [(f"{SHORT.get(target, target)} (pred.)", "predicted")]
    cols = [
        ("#", "rank"),
        (s.proxy, s.proxy),
        *(quality if predicted else []),
        *(
            [("prefill ms", "prefill_ms"), ("decode ms/tok", "decode_ms_per_token"), ("KV MB", "kv_cache_mb")]
            if generating
            else [("lat. ms", "latency_ms")]
        ),
        ("mem. MB", "memory_mb"),
        ("params", "params"),
    ]
    for title, _ in cols:
        table.add_column(title, justify="right", no_wrap=True)
    for m in result.frontier:
        table.add_row(*[_cell(m, key, s.proxy) for _, key in cols])
    return table


#: short names of the benchmark targets for an 80-column table
SHORT = {"valid_ppl": "val. ppl", "glue": "GLUE"}


def _cell(m: dict[str, Any], key: str, proxy: str) -> str:
    from trainfree.search.quality_view import quality_cell

    v = m.get(key)
    if key == "predicted":
        return quality_cell(m)
    if isinstance(v, float):
        return f"{v:.3f}" if key == proxy else f"{v:.1f}"
    if isinstance(v, int) and key == "params":
        return f"{v / 1e6:.2f}M"
    return "-" if v is None else str(v)


def print_frontier(run: Any, result: Any) -> None:
    """Everything a finished (or stopped) search prints: the frontier, what the figures mean,
    the notes on the run, and what it wrote."""
    s = run.settings
    if result.evaluations == 0:  # nothing to tabulate, and no result file was written
        err_console.print(
            f"the budget ({s.budget}) ended before any architecture was evaluated: no frontier "
            f"written; give a larger one: `trainfree search --resume --out {run.out} --budget N`",
            highlight=False,
        )
        return
    console.print(frontier_table(run, result))
    _print_beside_the_table(run, result)
    _print_run_notes(run, result)
    if result.stopped == "finished earlier":
        err_console.print(
            f"this run finished earlier (budget {s.budget}): reprinted, nothing evaluated; to continue "
            f"it, give a larger budget: `trainfree search --resume --out {run.out} --budget N`",
            highlight=False,
        )
        return
    _print_written(run, result)


def _print_beside_the_table(run: Any, result: Any) -> None:
    """What the table's figures are: the predicted quality's fit, what was timed, how the
    reference models compare, and why the frontier is empty when it is."""
    s = run.settings
    if result.frontier:
        fit, why = run.quality_fit()
        err_console.print(
            f"{SHORT.get(fit.target, fit.target)} (pred.): {fit.label} predicted from {s.proxy} for a model "
            f"{fit.recipe}; {100 * fit.level:.0f}% interval; * beyond the benchmark's scores "
            "(docs/search.md#predicted-quality-in-the-benchmarks-units)"
            if fit
            else why,
            highlight=False,
        )
    if run.device:
        from trainfree.hardware.wording import what_is_timed

        err_console.print(what_is_timed(s.hardware.as_dict()), highlight=False)
    if run.reference_rows:
        from trainfree.objectives import OBJECTIVES
        from trainfree.search.references import comparisons

        costs = [c for c in s.objectives if OBJECTIVES[c].measured] or ["params"]
        for line in comparisons(run.reference_rows, result.frontier, costs):
            console.print(line, highlight=False)
    if not result.frontier and result.evaluations:
        reasons = {r.reason for r in run.store.records.values() if r.reason}
        err_console.print(
            "[yellow]no architecture satisfied every constraint;[/] "
            + (f"e.g. {sorted(reasons)[0]}" if reasons else "")
            + f" (all reasons in {run.out}/evaluated.csv)",
            highlight=False,
        )


def _print_run_notes(run: Any, result: Any) -> None:
    """The cost model's accuracy on the frontier, the resolution, unmeasured entrants, the
    proxy's balance and a busy machine: each printed only where it applies."""
    s = run.settings
    live = run.cost_source.live_accuracy() if run.device else {}
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
            f"next: open {run.out}/report.html in a browser; write frontier model #{pick} with\n"
            f"  {export_command(run.out, pick)}",
            highlight=False,
        )
