"""A finished run directory read back for its report: what each file holds, what is missing.

Every file is optional here: a run from an older version (no ``predicted`` quality, no
``references``, no ``predictor.json``) or one stopped before its outputs still gets a report
with what it has, and ``missing`` says what it lacks.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trainfree.errors import TrainfreeError
from trainfree.io import read_json, read_regular

#: the most a report reads of one file (a run's evaluated.csv is about 1 MB per 1,000 models)
READ_LIMIT = 512 * 1024 * 1024


@dataclass
class RunFiles:
    """The parts of a run directory a report shows."""

    out: Path
    settings: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # frontier.json without its models
    models: list[dict[str, Any]] = field(default_factory=list)
    evaluated: pd.DataFrame | None = None
    predictor: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def proxy(self) -> str:
        return str(self.meta.get("proxy") or self.settings.get("proxy") or "score")

    @property
    def costs(self) -> list[str]:
        objectives = self.meta.get("objectives")
        if isinstance(objectives, list) and len(objectives) > 1:
            return [str(o) for o in objectives[1:]]
        return [str(o) for o in self.settings.get("objectives") or []]

    @property
    def hardware(self) -> dict[str, Any]:
        hw = self.settings.get("hardware") or self.meta.get("hardware") or {}
        return hw if isinstance(hw, dict) else {}

    @property
    def references(self) -> list[dict[str, Any]]:
        refs = self.meta.get("references") or []
        return [r for r in refs if isinstance(r, dict) and r.get("name")]

    @property
    def measured_models(self) -> list[dict[str, Any]]:
        """The frontier models whose device costs were measured (a frontier written by this
        version holds no other; an analytic run measures nothing and all count)."""
        return [m for m in self.models if m.get("costs", "measured") in ("measured", None)]


def _json(path: Path, files: RunFiles) -> Any:
    if not path.exists():
        files.missing.append(path.name)
        return None
    try:
        return read_json(path, limit=READ_LIMIT)
    except (OSError, ValueError, TrainfreeError) as exc:
        files.missing.append(f"{path.name} (unreadable: {exc})")
        return None


def read_run(out: str | Path) -> RunFiles:
    """The run in ``out`` as its report needs it. Raises :class:`TrainfreeError` if ``out``
    holds no run at all (neither ``settings.json`` nor ``frontier.json``)."""
    out = Path(out)
    if not out.is_dir():
        raise TrainfreeError(f"{out} is not a run directory (no such folder)")
    files = RunFiles(out)
    settings = _json(out / "settings.json", files)
    frontier = _json(out / "frontier.json", files)
    if not isinstance(settings, dict) and not isinstance(frontier, dict):
        raise TrainfreeError(f"{out} holds no search run (neither settings.json nor frontier.json)")
    files.settings = settings if isinstance(settings, dict) else {}
    if isinstance(frontier, dict):
        files.models = [m for m in frontier.get("models") or [] if isinstance(m, dict)]
        files.meta = {k: v for k, v in frontier.items() if k != "models"}
    predictor = _json(out / "predictor.json", files) if (out / "predictor.json").exists() else None
    files.predictor = predictor if isinstance(predictor, dict) else None
    files.evaluated = _evaluated(out / "evaluated.csv", files)
    _fill_quality(files)
    return files


def _fill_quality(files: RunFiles) -> None:
    """A run written before predicted quality: the shipped fit of its proxy and balance
    (:mod:`trainfree.quality`) applied to its frontier now, and said so."""
    if files.meta.get("quality") is not None or not files.models:
        return
    from trainfree.quality import shipped_fit

    space = str(files.settings.get("space") or files.meta.get("space") or "")
    balance = files.meta.get("balance") if isinstance(files.meta.get("balance"), dict) else None
    fit, why = shipped_fit(space, files.proxy, balance)
    if fit is None:
        files.meta["quality"] = {"note": why}
        return
    for m in files.models:
        predicted = fit.fields(number(m.get(files.proxy)))
        if predicted:
            m["predicted"] = predicted
    files.meta["quality"] = {"note": fit.note() + " (Applied by `trainfree report`: the run predates it.)"}


def _evaluated(path: Path, files: RunFiles) -> pd.DataFrame | None:
    if not path.exists():
        files.missing.append(path.name)
        return None
    try:
        return pd.read_csv(io.BytesIO(read_regular(path, limit=READ_LIMIT)))
    except (OSError, ValueError, TrainfreeError) as exc:
        files.missing.append(f"{path.name} (unreadable: {exc})")
        return None


def number(x: Any) -> float:
    """A field as a float (NaN where absent or not a number)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def config_summary(config: Any, keys: list[str] | None = None, width: int = 8) -> str:
    """``n_layer=2 d_model=384 d_inner=[3008,576]``: the config's ``keys`` (default: all),
    lists longer than ``width`` cut with their length."""
    if not isinstance(config, dict):
        return ""
    parts = []
    for k in keys if keys is not None else list(config):
        if k not in config:
            continue
        v = config[k]
        if isinstance(v, list):
            shown = ",".join(json.dumps(x) for x in v[:width])
            v = f"[{shown}{f',... ({len(v)})' if len(v) > width else ''}]"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The config keys whose value differs between ``configs`` (what tells them apart), in
    the first config's order; all keys if there is only one config."""
    if not configs:
        return []
    keys = list(configs[0])
    if len(configs) == 1:
        return keys
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
