"""Readers for the published benchmarks (NAS-Bench-BERT JSON, LiteTransformerSearch folders).

Each loader turns a benchmark into a :class:`Benchmark`: a list of (id, config, ground truth)
plus the entries it had to skip and why. Malformed files raise :class:`BenchmarkDataError`
naming the file and the entry; an architecture without ground truth is skipped *and
reported*, never silently dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainfree.data import data_root
from trainfree.errors import BenchmarkDataError, ConfigError
from trainfree.spaces import SearchSpace, get_space

#: Default ground-truth field per benchmark family, and whether higher is better.
FLEXIBERT_TARGETS = ("glue", "cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")
LTS_TARGETS = ("valid_ppl", "test_ppl")


@dataclass(frozen=True)
class BenchmarkEntry:
    """One trained architecture: its id, config, ground truth and any extra published data."""

    id: str
    config: Any
    ground_truth: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Benchmark:
    """A loaded benchmark. ``higher_is_better`` says how to read ``ground_truth``."""

    space: SearchSpace
    path: Path
    target: str
    higher_is_better: bool
    entries: list[BenchmarkEntry]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)


def default_data_path(space_name: str) -> Path:
    """Where the shipped-in-shared copy of a space's benchmark lives under ``data_root()``."""
    family = _family(space_name)
    if family == "flexibert":
        return data_root() / "nas-bench-bert" / "BERT_benchmark.json"
    return data_root() / "lts" / ("random_GPT2_wt103" if family == "gpt2" else "random_TransXL_wt103")


def load_benchmark(
    space: str | SearchSpace, path: str | Path | None = None, target: str | None = None
) -> Benchmark:
    """Load the benchmark at ``path`` (default: :func:`default_data_path`) for ``space``."""
    sp = get_space(space) if isinstance(space, str) else space
    p = Path(path) if path is not None else default_data_path(sp.name)
    if not p.exists():
        raise BenchmarkDataError(f"{p}: no such file or folder (pass --data, or set $TRAINFREE_DATA)")
    if _family(sp.name) == "flexibert":
        return _load_flexibert(sp, p, target or "glue")
    return _load_lts(sp, p, target or "valid_ppl")


def _family(space_name: str) -> str:
    if space_name.startswith("flexibert"):
        return "flexibert"
    if space_name in ("gpt2", "transxl"):
        return space_name
    raise BenchmarkDataError(
        f"no benchmark loader for space '{space_name}' (known: flexibert*, gpt2, transxl)"
    )


# ------------------------------------------------------------------ NAS-Bench-BERT
def _load_flexibert(space: SearchSpace, path: Path, target: str) -> Benchmark:
    if target not in FLEXIBERT_TARGETS:
        raise BenchmarkDataError(
            f"target '{target}' unknown for NAS-Bench-BERT; expected one of {FLEXIBERT_TARGETS}"
        )
    file = path / "BERT_benchmark.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchmarkDataError(f"{file}: cannot read JSON ({exc})") from None
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{file}: expected a JSON list of architectures, got {type(data).__name__}")
    entries, skipped, seen = [], [], set()
    for pos, item in enumerate(data):
        if not isinstance(item, dict) or "id" not in item:
            raise BenchmarkDataError(f"{file}: entry #{pos} is not an object with an 'id'")
        eid = str(item["id"])
        if eid in seen:
            raise BenchmarkDataError(f"{file}: entry id {eid} appears twice")
        seen.add(eid)
        hp = item.get("hparams", {})
        overrides = hp.get("model_hparam_overrides") if isinstance(hp, dict) else None
        if not isinstance(overrides, dict):
            raise BenchmarkDataError(f"{file}: entry {eid}: missing 'hparams.model_hparam_overrides'")
        config = _config(space, overrides, f"{file}: entry {eid}")
        scores = item.get("scores") or {}
        value = scores.get(target) if isinstance(scores, dict) else None
        if not _is_number(value):
            skipped.append((eid, f"no numeric '{target}' score"))
            continue
        extra = {k: v for k, v in scores.items() if _is_number(v)}
        entries.append(BenchmarkEntry(eid, config, float(value), extra))
    return Benchmark(space, file, target, True, entries, skipped)


# ------------------------------------------------------------------ LiteTransformerSearch
_RANDOM_RE = re.compile(r"^config_(\d+)$")


def _read_yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BenchmarkDataError(f"{file}: cannot read YAML ({exc})") from None


def _lts_config_files(folder: Path) -> list[tuple[str, Path]]:
    """(id, model_config.yaml) for both layouts archai writes: config_N/jM/ and M*/."""
    found = []
    for f in folder.glob("config_*/j*/model_config.yaml"):
        if _RANDOM_RE.match(f.parent.parent.name):
            found.append((f"{f.parent.parent.name}_{f.parent.name}", f))
    for f in folder.glob("*/model_config.yaml"):
        found.append((f.parent.name, f))

    def key(item: tuple[str, Path]) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]

    return sorted(found, key=key)


def _load_lts(space: SearchSpace, folder: Path, target: str) -> Benchmark:
    if target not in LTS_TARGETS:
        raise BenchmarkDataError(f"target '{target}' unknown for LTS; expected one of {LTS_TARGETS}")
    if not folder.is_dir():
        raise BenchmarkDataError(
            f"{folder}: expected an LTS folder (config_*/j*/model_config.yaml or M*/...)"
        )
    files = _lts_config_files(folder)
    if not files:
        raise BenchmarkDataError(f"{folder}: no model_config.yaml found (config_*/j*/ or M*/ layout)")
    ppl_file = folder / "ppl_summary.yaml"
    if not ppl_file.exists():
        raise BenchmarkDataError(f"{ppl_file}: missing (it holds the ground-truth perplexities)")
    ppl = _read_yaml(ppl_file)
    if not isinstance(ppl, dict):
        raise BenchmarkDataError(f"{ppl_file}: expected a mapping of architecture id to perplexity")
    extras = {}
    for name in ("params_summary", "latency_summary", "memory_summary"):
        f = folder / f"{name}.yaml"
        if f.exists():
            table = _read_yaml(f)
            if not isinstance(table, dict):
                raise BenchmarkDataError(f"{f}: expected a mapping of architecture id to values")
            extras[name] = table
    entries, skipped = [], []
    for eid, file in files:
        raw = _read_yaml(file)
        if not isinstance(raw, dict):
            raise BenchmarkDataError(f"{file}: expected a mapping of config fields")
        config = _config(space, raw, str(file))
        value = _lts_ground_truth(ppl.get(eid), target)
        if value is None:
            skipped.append((eid, f"no numeric '{target}' in {ppl_file.name}"))
            continue
        extra = {name.removesuffix("_summary"): table[eid] for name, table in extras.items() if eid in table}
        entries.append(BenchmarkEntry(eid, config, value, extra))
    return Benchmark(space, folder, target, False, entries, skipped)


def _lts_ground_truth(value: Any, target: str) -> float | None:
    """Random sets store ``{valid_ppl: x, test_ppl: y, ...}``; Pareto sets store one number."""
    if isinstance(value, dict):
        value = value.get(target)
    return float(value) if _is_number(value) else None


def _config(space: SearchSpace, raw: dict[str, Any], where: str) -> Any:
    """The space's config for a benchmark entry; a bad field becomes a data error naming ``where``."""
    try:
        return space.config_from_benchmark(raw)
    except ConfigError as exc:
        raise BenchmarkDataError(f"{where}: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
