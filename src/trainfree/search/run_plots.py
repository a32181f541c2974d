"""The plotly figures of ``report.html``: a frontier panel per pair of objectives and the
cost model's predicted against measured costs. Every trace is an SVG ``scatter`` (not
``scattergl``); the frontier's trace of a panel has the uid ``frontier-X-Y``, so its drawn
points are the SVG paths under ``g.tracefrontier-X-Y`` (what the browser test counts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainfree.objectives import OBJECTIVES
from trainfree.search.quality_view import quality_hover
from trainfree.search.run_files import RunFiles, config_summary, number, varying_keys

RED, GREY, BLUE = "#d62728", "#9a9a9a", "#1f77b4"


def field_of(name: str) -> str:
    return OBJECTIVES[name].field if name in OBJECTIVES else name


def axis_title(name: str) -> str:
    return OBJECTIVES[name].title if name in OBJECTIVES else f"{name} (higher is better)"


def front_2d(x: Sequence[float], y: Sequence[float], y_higher: bool) -> list[bool]:
    """Whether each point is on the 2-D front of (x minimised, y maximised if ``y_higher``
    else minimised); points with a NaN are on no front."""
    sy = 1.0 if y_higher else -1.0
    pts = [(a, sy * b) for a, b in zip(x, y, strict=True)]
    out = []
    for i, (a, b) in enumerate(pts):
        if not (math.isfinite(a) and math.isfinite(b)):
            out.append(False)
            continue
        dominated = any(
            j != i and c <= a and d >= b and (c < a or d > b)
            for j, (c, d) in enumerate(pts)
            if math.isfinite(c) and math.isfinite(d)
        )
        out.append(not dominated)
    return out


def hover(files: RunFiles, m: dict[str, Any], keys: list[str], on_front: bool) -> str:
    """A frontier model's hover label: row number, config, proxy, costs, predicted quality."""
    lines = [f"<b>#{m.get('rank')}</b> (arch {m.get('index')}, {m.get('config_file', '')})"]
    summary = config_summary(m.get("config"), keys)
    lines += [summary[i : i + 70] for i in range(0, len(summary), 70)]
    lines.append(f"{files.proxy} {number(m.get(files.proxy)):.3f} (proxy, higher is better)")
    q = quality_hover(m)
    if q:
        lines.append(q)
    p = number(m.get("params"))
    if math.isfinite(p):
        lines.append(f"params {p / 1e6:.2f}M")
    for c in files.costs:
        if c in OBJECTIVES and OBJECTIVES[c].measured:
            v = number(m.get(OBJECTIVES[c].field))
            if math.isfinite(v):
                lines.append(f"{c} {v:.1f} {OBJECTIVES[c].unit} ({m.get('costs', 'measured')})")
    lines.append("on this panel's 2-D front" if on_front else "not on this panel's 2-D front")
    return "<br>".join(lines)


def _evaluated_traces(files: RunFiles, x: str, y: str) -> list[Any]:
    import plotly.graph_objects as go

    ev = files.evaluated
    fx, fy = field_of(x), field_of(y)
    if ev is None or fx not in ev.columns or fy not in ev.columns:
        return []
    ok = ev["feasible"].astype(bool) if "feasible" in ev.columns else np.ones(len(ev), dtype=bool)
    pred = ev["costs"].eq("predicted") if "costs" in ev.columns else np.zeros(len(ev), dtype=bool)
    traces = []
    kinds = (("measured", ok & ~pred, "circle"), ("costs predicted", ok & pred, "circle-open"))
    for label, mask, symbol in kinds:
        sub = ev[mask]
        if len(sub) == 0:
            continue
        traces.append(
            go.Scatter(
                x=sub[fx].astype(float).tolist(),
                y=sub[fy].astype(float).tolist(),
                mode="markers",
                name=f"evaluated, {label} ({len(sub)})",
                marker={"color": GREY, "size": 5, "symbol": symbol, "opacity": 0.6},
                hovertext=[f"arch {i}" for i in sub["index"]] if "index" in sub.columns else None,
                hoverinfo="text+x+y",
                uid=f"evaluated-{label.split()[-1]}-{x}-{y}",
            )
        )
    return traces


def panel_figure(files: RunFiles, x: str, y: str) -> Any:
    """One panel: ``y`` against ``x`` for every evaluated architecture and the frontier."""
    import plotly.graph_objects as go

    models = files.measured_models
    fx, fy = field_of(x), field_of(y)
    xs = [number(m.get(fx)) for m in models]
    ys = [number(m.get(fy)) for m in models]
    on = front_2d(xs, ys, y_higher=y not in OBJECTIVES)
    keys = varying_keys([m["config"] for m in models if isinstance(m.get("config"), dict)])
    fig = go.Figure(_evaluated_traces(files, x, y))
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=[str(m.get("rank")) for m in models],
            textposition="top center",
            textfont={"size": 9, "color": RED},
            name=f"frontier, all objectives ({len(models)}; hollow: not on this panel's 2-D front)",
            marker={"color": RED, "size": 9, "symbol": ["circle" if o else "circle-open" for o in on],
                    "line": {"color": RED, "width": 1.5}},
            hovertext=[hover(files, m, keys, o) for m, o in zip(models, on, strict=True)],
            hoverinfo="text",
            uid=f"frontier-{x}-{y}",
        )
    )
    _add_references(fig, files, x, y)
    fig.update_layout(
        title={"text": f"{y} against {x}", "font": {"size": 14}},
        xaxis_title=axis_title(x),
        yaxis_title=axis_title(y),
        height=460,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.18, "font": {"size": 10}},
        template="plotly_white",
        hoverlabel={"align": "left"},
    )
    for axis, name in (("xaxis", x), ("yaxis", y)):
        if name in ("params", "flops"):
            fig.update_layout({axis: {"type": "log"}})
    return fig


def _add_references(fig: Any, files: RunFiles, x: str, y: str) -> None:
    import plotly.graph_objects as go

    refs = [r for r in files.references if r.get("measured")]
    if not refs or x not in OBJECTIVES:
        return
    fx = field_of(x)
    if y not in OBJECTIVES:  # the proxy is not computed for the references: a line at their cost
        for r in refs:
            v = number(r.get(fx))
            if math.isfinite(v):
                fig.add_vline(x=v, line={"color": BLUE, "dash": "dash", "width": 1},
                              annotation_text=r["name"], annotation_font={"size": 9, "color": BLUE})
        return
    fy = field_of(y)
    pts = [(number(r.get(fx)), number(r.get(fy)), r["name"]) for r in refs]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    if pts:
        fig.add_trace(go.Scatter(
            x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers+text", text=[p[2] for p in pts],
            textposition="bottom center", marker={"color": BLUE, "symbol": "x", "size": 9},
            name="reference models", uid=f"references-{x}-{y}", textfont={"size": 9, "color": BLUE},
        ))


def cost_model_figure(predictor: dict[str, Any]) -> Any | None:
    """Predicted against measured cost for each frontier entrant the model predicted before
    it was measured (``predictor.json``: ``frontier_pairs``), with the line y = x."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pairs = predictor.get("frontier_pairs") or {}
    shown = {f: v for f, v in pairs.items() if isinstance(v, list) and v and f in OBJECTIVE_FIELDS}
    if not shown:
        return None
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[OBJECTIVE_FIELDS[f] for f in shown])
    for col, (f, v) in enumerate(shown.items(), start=1):
        arr = np.array(v, dtype=float).reshape(-1, 2)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        fig.add_trace(go.Scatter(x=arr[:, 1], y=arr[:, 0], mode="markers", marker={"color": RED, "size": 7},
                                 name=f"{f} ({len(arr)})", uid=f"costmodel-{f}"), row=1, col=col)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"color": GREY, "dash": "dot"},
                                 name="predicted = measured", showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text="measured", row=1, col=col)
        fig.update_yaxes(title_text="predicted before measuring", row=1, col=col)
    fig.update_layout(height=380, template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def quality_figure(files: RunFiles) -> Any | None:
    """The frontier's predicted quality (with its interval) against each cost: one panel
    per cost, the points numbered as the table (None where no model has a prediction)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = [m for m in files.measured_models if isinstance(m.get("predicted"), dict)]
    costs = [c for c in files.costs if c in OBJECTIVES]
    if not models or not costs:
        return None
    p0 = models[0]["predicted"]
    label = f"{p0.get('label', p0.get('target'))}, {100 * float(p0.get('level', 0.9)):.0f}% interval"
    fig = make_subplots(rows=1, cols=len(costs), subplot_titles=[f"predicted against {c}" for c in costs])
    value = [number(m["predicted"].get("value")) for m in models]
    up = [number(m["predicted"].get("high")) - v for m, v in zip(models, value, strict=True)]
    down = [v - number(m["predicted"].get("low")) for m, v in zip(models, value, strict=True)]
    for col, c in enumerate(costs, start=1):
        fig.add_trace(go.Scatter(
            x=[number(m.get(OBJECTIVES[c].field)) for m in models], y=value, mode="markers+text",
            text=[str(m.get("rank")) for m in models], textposition="middle right",
            textfont={"size": 9, "color": RED}, marker={"color": RED, "size": 7},
            error_y={"type": "data", "array": up, "arrayminus": down, "color": "#e8a0a0", "thickness": 1},
            name="frontier (predicted)", showlegend=col == 1, uid=f"predicted-{c}",
            hovertext=[quality_hover(m) for m in models], hoverinfo="text",
        ), row=1, col=col)
        fig.update_xaxes(title_text=OBJECTIVES[c].title, row=1, col=col,
                         type="log" if c in ("params", "flops") else None)
        fig.update_yaxes(title_text=label if col == 1 else None, row=1, col=col)
    fig.update_layout(height=420, template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      legend={"orientation": "h", "y": -0.2})
    return fig


OBJECTIVE_FIELDS = {o.field: o.title for o in OBJECTIVES.values() if o.measured}
__all__ = ["cost_model_figure", "front_2d", "panel_figure", "quality_figure"]
