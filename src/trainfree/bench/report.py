"""The comparison report of ``trainfree bench --report DIR``.

``DIR`` receives, each file written atomically:

- ``report.md``: the run's settings and a Markdown table, one row per proxy sorted by Spearman
  (Spearman and Kendall with bootstrap 95% intervals, top-10% precision, ``tau_iso`` (Kendall
  over size-matched pairs, ``evaluate.tau_iso``), ms per architecture,
  whether the proxy needs data / gradients, errors), with links to the plots;
- ``summary.csv``: the same table, one column per figure (intervals as ``*_lo`` / ``*_hi``),
  then, for each cost judged with ``--frontier COST`` (:mod:`~trainfree.bench.selection`),
  :data:`SELECTION_FIELDS` suffixed ``_<cost>``; ``report.md`` shows them in one more table;
- ``scores.csv``: one row per architecture: ``id``, ``ground_truth``, then one column per proxy
  with its raw score under the proxy's registered name (empty where the proxy failed), then,
  for balanced proxies, their components (``zerolm.attention_sum``, ...). Every figure of
  ``summary.csv`` can be recomputed from it with
  :func:`~trainfree.bench.correlation.rank_correlation` (same ``seed``), except the ``fit:K``
  rows of balanced proxies, which are means over held-out splits: their column holds the first
  split's scores, and the components let anyone refit;
- ``plots/<proxy>.png``: score against ground truth, rho in the title, log x-axis when the
  scores are positive and span more than two decades.

:func:`run_payload` is the same run as one JSON object (``trainfree bench --json FILE``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainfree.bench.harness import BenchmarkScores, ProxyRun
from trainfree.bench.loaders import Benchmark
from trainfree.io import atomic_write_bytes, atomic_write_text
from trainfree.proxies import get_proxy

SUMMARY_COLUMNS = (
    "proxy",
    "n",
    "n_errors",
    "spearman",
    "spearman_lo",
    "spearman_hi",
    "kendall",
    "kendall_lo",
    "kendall_hi",
    "pearson",
    "top10_precision",
    "tau_iso",
    "ms_per_arch",
    "needs_data",
    "needs_grad",
    "alpha_strategy",
    "alpha",
    "aggregate",
    "beta",
    "spearman_std",
    "kendall_std",
)

#: per judged cost, summary.csv's columns ``<field>_<cost>`` and the Selection figure they hold
SELECTION_FIELDS = {
    "regret": "regret",
    "regret_std": "regret_std",
    "judged": "n",
    "frontier": "frontier_size",
    "true_frontier": "true_frontier_size",
    "recovered": "recovered",
    "hv": "hv_ratio",
}


def selection_costs(runs: dict[str, ProxyRun]) -> list[str]:
    """The costs the runs were judged against (``--frontier``), in order."""
    return list(dict.fromkeys(c for run in runs.values() for c in run.result.get("selection", {})))


def summary_columns(runs: dict[str, ProxyRun]) -> list[str]:
    """:data:`SUMMARY_COLUMNS`, then the selection columns of each judged cost."""
    extra = [f"{f}_{c}" for c in selection_costs(runs) for f in SELECTION_FIELDS]
    return [*SUMMARY_COLUMNS, *extra]


def _num(x: Any) -> str:
    """Full-precision text of a number (``repr`` round-trips); empty for NaN / missing."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return "" if math.isnan(x) else repr(float(x))
    return str(x)


def summary_rows(runs: dict[str, ProxyRun]) -> list[dict[str, Any]]:
    """One dict per proxy (keys :data:`SUMMARY_COLUMNS`), best Spearman first, NaN last."""
    rows = []
    for name, run in runs.items():
        r, proxy = run.result, get_proxy(name)
        rows.append(
            {
                "proxy": name,
                "n": r["n"],
                "n_errors": len(run.errors),
                "spearman": r["spearman"],
                "spearman_lo": r["spearman_ci"][0],
                "spearman_hi": r["spearman_ci"][1],
                "kendall": r["kendall"],
                "kendall_lo": r["kendall_ci"][0],
                "kendall_hi": r["kendall_ci"][1],
                "pearson": r.get("pearson"),
                "top10_precision": r.get("top10_precision"),
                "tau_iso": r.get("tau_iso"),
                "ms_per_arch": run.seconds_per_arch * 1000.0,
                "needs_data": proxy.needs_data,
                "needs_grad": proxy.needs_grad,
                "alpha_strategy": r.get("alpha_strategy"),
                "alpha": r.get("alpha"),
                "aggregate": r.get("aggregate"),
                "beta": r.get("beta"),
                "spearman_std": r.get("spearman_std"),
                "kendall_std": r.get("kendall_std"),
                **{
                    f"{f}_{c}": sel.get(key)
                    for c, sel in r.get("selection", {}).items()
                    for f, key in SELECTION_FIELDS.items()
                },
            }
        )

    def key(row: dict[str, Any]) -> tuple[bool, float, str]:
        rho = row["spearman"]
        bad = rho is None or not math.isfinite(rho)
        return (bad, 0.0 if bad else -rho, row["proxy"])

    return sorted(rows, key=key)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_num(x) for x in row])
    return buf.getvalue()


def scores_table(bench: Benchmark, runs: dict[str, ProxyRun]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``scores.csv``."""
    header = ["id", "ground_truth", *runs]
    columns: list[np.ndarray] = [run.scores for run in runs.values()]
    for name, run in runs.items():
        for comp, values in (run.components or {}).items():
            header.append(f"{name}.{comp}")
            columns.append(values)
    rows = []
    for i, entry in enumerate(bench.entries):
        rows.append([entry.id, float(entry.ground_truth), *(float(c[i]) for c in columns)])
    return header, rows


def run_payload(
    space: str,
    bench: Benchmark,
    scores: BenchmarkScores,
    seed: int,
    alpha: Any,
    cache_dir: str | Path | None,
    costs: Sequence[str] = (),
    hardware: dict[str, Any] | None = None,
    cost_failures: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON record of one benchmark run (``bench --json``): what was judged against what,
    the settings that decide the scores (seed, balance strategy), where the scores came from
    (the cache counts) and each proxy's figures. ``costs`` (the ``--frontier`` costs judged)
    adds a ``selection`` block saying how budgets were drawn and which hardware settings timed
    the models, so a reader can tell measured costs from analytic ones."""
    payload: dict[str, Any] = {
        "space": space,
        "data": str(bench.path),
        "target": bench.target,
        "higher_is_better": bench.higher_is_better,
        "n": len(bench),
        "skipped": [{"id": i, "reason": w} for i, w in bench.skipped],
        "seed": seed,
        "alpha_strategy": str(alpha),
        "wall_seconds": scores.wall_seconds,
        "workers": scores.workers,
        "cache": {
            "dir": str(cache_dir) if cache_dir else None,
            "computed": scores.computed,
            "cached": scores.cached,
            "invalid": scores.invalid,
        },
        "proxies": {name: run.as_dict() for name, run in scores.runs.items()},
    }
    if costs:
        payload["selection"] = {
            "costs": list(costs),
            "budgets": "deciles of the cost over the judged architectures (10%, 20%, ..., 100%)",
            "hardware": hardware,
            "cost_failures": dict(cost_failures or {}),
        }
    return payload


def write_report(
    out_dir: str | Path,
    bench: Benchmark,
    scores: BenchmarkScores,
    title: str | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write ``report.md``, ``summary.csv``, ``scores.csv`` and ``plots/`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(scores.runs)
    written = []
    header, table = scores_table(bench, scores.runs)
    written.append(atomic_write_text(out / "scores.csv", _csv(header, table)))
    columns = summary_columns(scores.runs)
    written.append(
        atomic_write_text(out / "summary.csv", _csv(columns, [[r.get(c) for c in columns] for r in rows]))
    )
    plot_files = {}
    if plots:
        for name, run in scores.runs.items():
            path = out / "plots" / f"{name}.png"
            write_scatter(path, bench, run)
            plot_files[name] = path
            written.append(path)
    written.append(atomic_write_text(out / "report.md", markdown(bench, scores, rows, plot_files, title)))
    from trainfree.htmlreport import plotly_available

    if plots and plotly_available():  # the same, interactive, in one self-contained page
        from trainfree.bench.report_html import bench_page

        page = bench_page(bench, scores.runs, rows, title or f"trainfree bench: {bench.space.name}")
        written.append(atomic_write_text(out / "report.html", page.render()))
    return written


def markdown(
    bench: Benchmark,
    scores: BenchmarkScores,
    rows: list[dict[str, Any]] | None = None,
    plot_files: dict[str, Path] | None = None,
    title: str | None = None,
) -> str:
    """The Markdown report: settings, the comparison table, failures, plots."""
    rows = rows if rows is not None else summary_rows(scores.runs)
    plot_files = plot_files or {}
    s = scores.settings
    sign = "higher" if bench.higher_is_better else "lower"
    lines = [
        f"# {title or f'Proxy comparison on {bench.space.name}'}",
        "",
        f"- benchmark: `{bench.path}` ({len(bench)} architectures"
        + (f", {len(bench.skipped)} skipped without ground truth" if bench.skipped else "")
        + ")",
        f"- ground truth: `{bench.target}` ({sign} is better); scores are higher = better",
        f"- settings: seed {s.get('seed', 0)}, sequence length {s.get('seq_len') or 'the space default'}, "
        f"batch size {s.get('batch_size') or 'each proxy default'}"
        + (f", options {s.get('options')}" if s.get("options") else ""),
        f"- wall time: {scores.wall_seconds:.1f} s with {scores.workers} worker(s); "
        f"{scores.computed} scores computed, {scores.cached} read from the cache"
        + (f", {scores.invalid} invalid cache entries recomputed" if scores.invalid else ""),
        "",
        "| proxy | n | Spearman [95% CI] | Kendall [95% CI] | top-10% | tau_iso | ms/arch | data | grad "
        "| errors |",
        "|---|---:|---|---|---:|---:|---:|:-:|:-:|---:|",
    ]
    for r in rows:
        name = f"[`{r['proxy']}`](plots/{r['proxy']}.png)" if r["proxy"] in plot_files else f"`{r['proxy']}`"
        if r.get("alpha") is not None:
            beta = f", beta {r['beta']:.2f}" if r.get("beta") else ""
            name += f" (alpha {r['alpha']:.2f} {r['aggregate']}{beta}, {r['alpha_strategy']})"
        rho = f"{_f(r['spearman'])} [{_f(r['spearman_lo'], 2)}, {_f(r['spearman_hi'], 2)}]"
        lines.append(
            f"| {name} | {r['n']} | {rho} "
            f"| {_f(r['kendall'])} [{_f(r['kendall_lo'], 2)}, {_f(r['kendall_hi'], 2)}] "
            f"| {_f(r['top10_precision'], 2)} | {_f(r.get('tau_iso'))} | {_f(r['ms_per_arch'], 2)} "
            f"| {'yes' if r['needs_data'] else '-'} | {'yes' if r['needs_grad'] else '-'} | {r['n_errors']} |"
        )
    lines.append("")
    if any(r.get("spearman_std") is not None for r in rows):
        lines += [
            "Rows with `fit:K`: alpha (and beta) fitted on K labelled architectures, correlations on "
            "the others only, mean over the random splits (interval: 2.5-97.5 percentiles over splits). "
            "A label-free default that was itself fitted on this benchmark (the transferred balance of "
            "`gpt2` and `transxl`) is judged the same way, refitted on half and judged on the other half.",
            "",
        ]
    lines += [
        "ms/arch: the proxy's own compute time in its worker, plus the model build time for proxies "
        "that need the model; for cached scores, the time measured when they were computed.",
        "",
    ]
    lines += selection_markdown(bench, scores.runs, rows)
    failures = [(name, run) for name, run in scores.runs.items() if run.errors]
    if failures:
        lines += ["## Failures", ""]
        for name, run in failures:
            eid, msg = next(iter(run.errors.items()))
            lines.append(
                f"- `{name}` failed on {len(run.errors)} architectures (evaluated on the rest); "
                f"e.g. `{eid}`: {msg}"
            )
        lines.append("")
    return "\n".join(lines)


def selection_markdown(bench: Benchmark, runs: dict[str, ProxyRun], rows: list[dict[str, Any]]) -> list[str]:
    """The ``--frontier`` table of report.md (no lines when no cost was judged)."""
    from trainfree.bench.selection import cells

    costs = selection_costs(runs)
    if not costs:
        return []
    judged = [run.result.get("selection", {}) for run in runs.values()]
    split = any(sel.get(c, {}).get("splits") for sel in judged for c in costs)
    lines = [
        "## Choices under a cost budget (`--frontier`)",
        "",
        f"Regret: at each of 10 budgets (the cost's deciles: 10%, ..., 100%), the true "
        f"`{bench.target}` of the best architecture within the budget minus that of the proxy's pick "
        "(ties in the score averaged), mean over the budgets, >= 0. Frontier: the proxy's Pareto "
        "frontier against the cost (size / architectures judged); recovered: models of the true "
        "frontier on it (/ true frontier size); HV: hypervolume of its models' true points over the "
        "true frontier's (log cost)."
        + (
            " With `fit:K`, every row is judged on the held-out architectures of the same splits: "
            "mean (± sd) over the splits."
            if split
            else ""
        ),
        "",
        "| proxy | cost | regret | frontier | recovered | HV |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        for c in costs:
            sel = runs[r["proxy"]].result.get("selection", {}).get(c)
            if sel:
                lines.append(f"| `{r['proxy']}` | {c} | " + " | ".join(cells(sel)) + " |")
    return [*lines, ""]


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "nan"
    return f"{x:.{digits}f}"


def write_scatter(path: str | Path, bench: Benchmark, run: ProxyRun) -> Path:
    """Score (x) against ground truth (y) of one proxy, written atomically as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.asarray(run.scores, dtype=np.float64)
    y = np.array([e.ground_truth for e in bench.entries], dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    fig = Figure(figsize=(5.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x[ok], y[ok], s=9, alpha=0.7, edgecolors="none")
    if ok.sum() >= 2 and (x[ok] > 0).all() and x[ok].max() / x[ok].min() > 100:
        ax.set_xscale("log")
    if ok.sum() >= 2 and (y[ok] > 0).all() and y[ok].max() / y[ok].min() > 10:
        ax.set_yscale("log")
    r = run.result
    rho = r.get("spearman", float("nan"))
    label = "held-out mean " if "protocol" in r else ""
    ax.set_title(
        f"{run.name} on {bench.space.name}: {label}Spearman rho = {rho:.3f} (n = {r['n']})", fontsize=9
    )
    ax.set_xlabel(f"{run.name} score (higher = better)")
    ax.set_ylabel(f"{bench.target} ({'higher' if bench.higher_is_better else 'lower'} is better)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
