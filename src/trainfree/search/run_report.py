"""``report.html``: a run directory shown as one self-contained page (docs/search.md).

The page holds the frontier as interactive plots (one panel per pair of objectives, every
frontier model numbered as in ``frontier.csv`` and the printed table, its 2-D front marked
per panel), the cost model's predictions against the later measurements, the space's
reference models, the settings, and per frontier model the ``trainfree export`` command that
writes it. It is written from the run's files alone (:mod:`trainfree.search.run_files`), so a
run of an older version gets one too (``trainfree report --run DIR``).
"""

from __future__ import annotations

import itertools
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError
from trainfree.hardware.wording import what_is_timed
from trainfree.htmlreport import Page, Table, plotly_available
from trainfree.io import atomic_write_text
from trainfree.objectives import OBJECTIVES
from trainfree.search.quality_view import quality_cell, quality_note
from trainfree.search.run_files import RunFiles, config_summary, number, read_run, varying_keys
from trainfree.search.run_plots import cost_model_figure, panel_figure, quality_figure

REPORT = "report.html"


@dataclass
class ReportWritten:
    path: Path
    bytes: int
    seconds: float


def export_command(run: str | Path, rank: int) -> str:
    """The command that writes frontier model ``rank`` of the run in ``run``."""
    name = Path(run).name or "run"
    return (
        f"trainfree export --run {shlex.quote(str(run))} --pick {rank} "
        f"--out {shlex.quote(f'models/{name}-r{rank}')}"
    )


def write_report(out: str | Path, shown_as: str | Path | None = None) -> ReportWritten:
    """Write ``out/report.html`` atomically from the run's files; ``shown_as``: the run's
    path as the export commands should name it (default ``out``)."""
    started = time.perf_counter()
    files = read_run(out)
    text = build_page(files, shown_as if shown_as is not None else out).render()
    path = atomic_write_text(Path(out) / REPORT, text)
    return ReportWritten(path, len(text.encode()), time.perf_counter() - started)


def write_run_report(out: Path) -> ReportWritten | str:
    """:func:`write_report` after a search: a report that cannot be written (plotly missing,
    a file of the run unreadable) is a reason, not a failed search: the results are written."""
    if not plotly_available():
        return "report.html not written: plotly is not installed (pip install plotly)"
    try:
        return write_report(out)
    except (OSError, ValueError, TrainfreeError) as exc:
        return f"report.html not written: {exc}"


def pairs(files: RunFiles) -> list[tuple[str, str]]:
    """The panels: ``(x, y)`` per pair of objectives; the proxy is always the y axis."""
    costs = [c for c in files.costs if c in OBJECTIVES]
    return [(c, files.proxy) for c in costs] + list(itertools.combinations(costs, 2))


def build_page(files: RunFiles, shown_as: str | Path) -> Page:
    s, meta = files.settings, files.meta
    title = f"trainfree search: {s.get('space') or meta.get('space', '?')}, {files.out.name}"
    page = Page(title)
    page.para(meta.get("title") or f"{files.proxy} against {', '.join(files.costs)}")
    _summary(page, files)
    page.heading("Frontier")
    measured = files.measured_models
    if not measured:
        page.para(
            "This run has no measured frontier: no architecture's device costs were measured "
            "within the limits (or the run stopped before its outputs were written), so there is "
            "nothing to plot. `trainfree search --resume --out "
            f"{shown_as} --budget N` continues it.",
            "warn",
        )
    else:
        page.para(
            f"{len(measured)} frontier models (red, numbered as in frontier.csv and the printed table); "
            "grey: every other evaluated architecture (hollow where its costs were predicted, not "
            "measured). A frontier model drawn hollow is not on that panel's 2-D front: it is on the "
            "frontier for another objective. Hover over a point for its config and figures.",
            "note",
        )
        for x, y in pairs(files):
            page.figure(panel_figure(files, x, y))
        page.heading("Predicted quality")
        page.para(quality_note(files), "note")
        fig = quality_figure(files)
        if fig is not None:
            page.figure(fig)
        page.heading("Frontier models")
        _frontier_table(page, files, measured, shown_as)
    _cost_model(page, files)
    _references(page, files)
    _settings(page, files)
    if files.missing:
        page.para(f"not in this run directory: {', '.join(files.missing)}", "note")
    return page


def _summary(page: Page, files: RunFiles) -> None:
    meta = files.meta
    facts = []
    if "evaluations" in meta:
        facts.append(f"{meta['evaluations']} architectures evaluated in {meta.get('generations', '?')} "
                     "generations")
    if meta.get("costs"):
        facts.append(f"costs {meta['costs']} (frontier: measured figures only)")
    load = meta.get("machine_load")
    if isinstance(load, dict) and load.get("busy"):
        facts.append("the machine was busy while measuring (frontier.json: machine_load)")
    if facts:
        page.para("; ".join(facts) + ".")
    if files.hardware and any(OBJECTIVES[c].measured for c in files.costs if c in OBJECTIVES):
        page.para(what_is_timed(files.hardware) + ".", "note")


def _fmt(key: str, value: Any) -> str:
    v = number(value)
    if not math.isfinite(v):
        return "-"
    if key in ("params", "decoder_params", "flops"):
        return f"{v / 1e6:.2f}M"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def _frontier_table(page: Page, files: RunFiles, models: list[dict[str, Any]], shown_as: Any) -> None:
    keys = varying_keys([m["config"] for m in models if isinstance(m.get("config"), dict)])
    fields = [OBJECTIVES[c].field for c in files.costs if c in OBJECTIVES]
    fields += [f for f in ("params",) if f not in fields]
    first = next((m["predicted"] for m in models if isinstance(m.get("predicted"), dict)), None)
    quality = f"{first.get('target', 'quality')} (predicted)" if first else "predicted quality"
    header = ["#", files.proxy, quality, *fields, "config", "export"]
    rows = []
    for m in models:
        rank = m.get("rank", "?")
        rows.append(
            [
                rank,
                _fmt(files.proxy, m.get(files.proxy)),
                quality_cell(m),
                *[_fmt(f, m.get(f)) for f in fields],
                config_summary(m.get("config"), keys),
                export_command(shown_as, rank) if isinstance(rank, int) else "",
            ]
        )
    page.table(Table(header, rows, left=["config"], code=["export"]))


def _cost_model(page: Page, files: RunFiles) -> None:
    page.heading("Cost model: predicted against measured")
    pred = files.predictor
    if pred is None:
        page.para(
            "No cost model: this run measured every architecture's costs (or they are analytic).", "note"
        )
        return
    acc = pred.get("held_out_accuracy") or {}
    live = pred.get("frontier_accuracy") or {}
    rows = []
    judged = (("calibration, 5-fold held out", acc), ("frontier entrants, before measuring", live))
    for label, table in judged:
        for f, a in table.items():
            if isinstance(a, dict) and f in ("latency_ms", "memory_mb", "decode_ms_per_token", "prefill_ms"):
                rows.append([label, f, a.get("n", "-"), _fmt("", a.get("spearman")),
                             f"{100 * number(a.get('median_ape')):.1f}%",
                             f"{100 * number(a.get('within_10pct')):.0f}%"])
    if rows:
        page.table(Table(["judged on", "cost", "n", "Spearman", "median |err|", "within 10%"], rows,
                         left=["judged on", "cost"]))
    fig = cost_model_figure(pred)
    if fig is None:
        page.para("No frontier model was predicted before it was measured: nothing to compare.", "note")
    else:
        page.figure(fig)


def _references(page: Page, files: RunFiles) -> None:
    refs = files.references
    if not refs:
        return
    page.heading("Reference models (shipped models, measured here with the run's settings)")
    fields = [OBJECTIVES[c].field for c in files.costs if c in OBJECTIVES and OBJECTIVES[c].measured]
    rows = [
        [r["name"], _fmt("params", r.get("params")), *[_fmt(f, r.get(f)) for f in fields],
         "yes" if r.get("measured") else f"no: {r.get('measure_error') or 'unknown'}"]
        for r in refs
    ]
    page.table(Table(["model", "params", *fields, "measured"], rows, left=["model", "measured"]))
    page.para("They are drawn as blue dashed lines (cost against the proxy) or blue crosses "
              "(cost against cost) on the frontier's panels.", "note")


def _settings(page: Page, files: RunFiles) -> None:
    page.heading("Settings")
    flat: list[list[Any]] = []
    for k, v in files.settings.items():
        if isinstance(v, dict):
            flat += [[f"{k}.{kk}", vv] for kk, vv in v.items()]
        else:
            flat.append([k, v])
    balance = files.meta.get("balance")
    if isinstance(balance, dict):
        flat += [[f"balance.{k}", v] for k, v in balance.items()]
    page.table(Table(["setting", "value"], [[k, "-" if v is None else v] for k, v in flat],
                     left=["setting", "value"]))


def has_frontier(files: RunFiles) -> bool:
    return bool(files.measured_models)


__all__ = ["REPORT", "ReportWritten", "build_page", "export_command", "write_report"]
