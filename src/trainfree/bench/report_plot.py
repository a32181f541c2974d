"""``plots/<proxy>.png`` of ``trainfree bench --report``: one proxy's scores against the
ground truth, drawn with matplotlib (imported only here, when plots are asked for)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from trainfree.bench.harness import ProxyRun
from trainfree.bench.loaders import Benchmark
from trainfree.io import atomic_write_bytes


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
