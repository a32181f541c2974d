"""``report.html`` of ``trainfree bench --report DIR``: the proxies' rank correlations as a
table and each proxy's score against the benchmark's trained quality as an interactive SVG
plot (hover: the architecture's id), in one self-contained page (:mod:`trainfree.htmlreport`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainfree.htmlreport import Page, Table


def _f(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return f"{v:.{digits}f}" if math.isfinite(v) else "-"


def bench_page(bench: Any, runs: dict[str, Any], rows: list[dict[str, Any]], title: str) -> Page:
    """The page: summary table (best Spearman first), then one scatter per proxy."""
    import plotly.graph_objects as go

    page = Page(title)
    direction = "higher" if bench.higher_is_better else "lower"
    page.para(
        f"{len(bench.entries)} trained architectures of {bench.space.name}'s benchmark; target "
        f"{bench.target} ({direction} is better). Correlations are signed so that a good proxy is "
        "positive; 95% bootstrap intervals in brackets."
    )
    header = ["proxy", "n", "Spearman", "95% interval", "Kendall", "top-10%", "ms/arch", "needs"]
    table = [
        [
            r["proxy"],
            r["n"],
            _f(r["spearman"]),
            f"{_f(r['spearman_lo'], 2)} to {_f(r['spearman_hi'], 2)}",
            _f(r["kendall"]),
            _f(r.get("top10_precision"), 2),
            _f(r["ms_per_arch"], 1),
            "+".join(k for k in ("data", "grad") if r[f"needs_{k}"]) or "config",
        ]
        for r in rows
    ]
    page.table(Table(header, table, left=["proxy", "needs"]))
    truth = np.array([e.ground_truth for e in bench.entries], dtype=float)
    ids = [str(e.id) for e in bench.entries]
    for r in rows:
        run = runs[r["proxy"]]
        fig = go.Figure(
            go.Scatter(
                x=np.asarray(run.scores, float).tolist(),
                y=truth.tolist(),
                mode="markers",
                marker={"size": 5, "color": "#1f77b4", "opacity": 0.7},
                hovertext=ids,
                hoverinfo="text+x+y",
                uid=f"proxy-{r['proxy']}",
            )
        )
        fig.update_layout(
            title={"text": f"{r['proxy']}: Spearman {_f(r['spearman'])}", "font": {"size": 13}},
            xaxis_title=f"{r['proxy']} (higher is better)",
            yaxis_title=bench.target,
            height=340,
            template="plotly_white",
            margin={"l": 60, "r": 20, "t": 40, "b": 45},
        )
        page.figure(fig)
    return page
