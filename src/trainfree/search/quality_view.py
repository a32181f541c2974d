"""How a frontier model's predicted quality is shown (tables, hover labels, the report).

A model written by this version carries ``predicted`` (:meth:`trainfree.quality.
QualityModel.predict_fields`): the benchmark target's name and unit, the predicted value and a
prediction interval. A run's ``frontier.json`` carries ``quality``: how it was predicted, or
why there is no unit. Older runs have neither, and show the proxy alone.
"""

from __future__ import annotations

import math
from typing import Any


def _predicted(m: dict[str, Any]) -> dict[str, Any] | None:
    p = m.get("predicted")
    if not isinstance(p, dict):
        return None
    try:
        if not all(math.isfinite(float(p[k])) for k in ("value", "low", "high")):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return p


def _num(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def quality_cell(m: dict[str, Any]) -> str:
    """``35.2 (31.0-40.1)`` or ``-``."""
    p = _predicted(m)
    if p is None:
        return "-"
    star = "*" if p.get("outside_benchmark") else ""
    return f"{_num(float(p['value']))}{star} ({_num(float(p['low']))}-{_num(float(p['high']))})"


def quality_hover(m: dict[str, Any]) -> str:
    p = _predicted(m)
    if p is None:
        return ""
    level = float(p.get("level", 0.9))
    beyond = "; score beyond the benchmark's: its end" if p.get("outside_benchmark") else ""
    return (
        f"{p.get('label', p.get('target', 'quality'))} {_num(float(p['value']))} "
        f"({100 * level:.0f}% interval {_num(float(p['low']))}-{_num(float(p['high']))}{beyond})"
    )


def quality_note(files: Any) -> str:
    """What the predicted-quality column is (or why there is none) for the run's report."""
    q = files.meta.get("quality")
    if not isinstance(q, dict):
        return (
            "predicted quality: none in this run (written by a version without it); the proxy "
            "score has no unit and only orders architectures"
        )
    return str(q.get("note") or "")
