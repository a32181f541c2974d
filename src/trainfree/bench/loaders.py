"""Readers for the published benchmarks (NAS-Bench-BERT JSON, LiteTransformerSearch folders).

Each space declares its benchmark (``SearchSpace.benchmark``, a :class:`BenchmarkSource`):
where it lives under ``$TRAINFREE_DATA``, which reader of :data:`READERS` reads it, its
ground-truth fields and their direction. :func:`load_benchmark` turns it into a
:class:`Benchmark`: a list of (id, config, ground truth) plus the entries it had to skip and
why. A reader parses the files and asks the space for each entry's config
(``space.config_from_benchmark``). Malformed files raise :class:`BenchmarkDataError` naming
the file and the entry; an architecture without ground truth is skipped *and reported*,
never silently dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainfree.data import data_root
from trainfree.errors import BenchmarkDataError, ConfigError
from trainfree.io import read_json, read_regular
from trainfree.spaces import SearchSpace, get_space, list_spaces
from trainfree.spaces.base import BenchmarkSource


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


#: What a reader returns: the file or folder it read, the entries, the skipped (id, why).
ReaderResult = tuple[Path, list[BenchmarkEntry], list[tuple[str, str]]]
Reader = Callable[[SearchSpace, Path, str], ReaderResult]


def benchmark_source(space: SearchSpace) -> BenchmarkSource:
    """The space's declared benchmark, or a clear error naming the spaces that have one."""
    if space.benchmark is None:
        known = ", ".join(n for n in list_spaces() if get_space(n).benchmark is not None)
        raise BenchmarkDataError(
            f"space '{space.name}' has no benchmark: no trained models of it are published to judge "
            f"proxies on (spaces with one: {known})"
        )
    return space.benchmark


def default_data_path(space_name: str) -> Path:
    """Where the shipped-in-shared copy of a space's benchmark lives under ``data_root()``."""
    return data_root() / benchmark_source(get_space(space_name)).path


def load_benchmark(
    space: str | SearchSpace, path: str | Path | None = None, target: str | None = None
) -> Benchmark:
    """Load the benchmark at ``path`` (default: :func:`default_data_path`) for ``space``;
    ``target`` is a ground-truth field the space's benchmark declares (default: its first)."""
    sp = get_space(space) if isinstance(space, str) else space
    source = benchmark_source(sp)
    target = target or source.default_target
    if target not in source.targets:
        raise BenchmarkDataError(
            f"target '{target}' unknown for {source.title}; expected one of {source.targets}"
        )
    p = Path(path) if path is not None else data_root() / source.path
    if not p.exists():
        raise BenchmarkDataError(f"{p}: no such file or folder (pass --data, or set $TRAINFREE_DATA)")
    reader = READERS[source.reader] if isinstance(source.reader, str) else source.reader
    file, entries, skipped = reader(sp, p, target)
    if not entries:
        why = f"{len(skipped)} entries without a numeric '{target}'" if skipped else "no entries at all"
        raise BenchmarkDataError(f"{file}: no usable entries ({why})")
    return Benchmark(sp, file, target, source.higher_is_better, entries, skipped)


# ------------------------------------------------------------------ NAS-Bench-BERT
def read_nas_bench_bert(space: SearchSpace, path: Path, target: str) -> ReaderResult:
    """``BERT_benchmark.json`` (or its folder): a list of entries with ``hparams`` and ``scores``."""
    file = path / "BERT_benchmark.json" if path.is_dir() else path
    try:  # a regular file only (a FIFO would never answer); a deep nesting is a ValueError
        data = read_json(file, follow=True)
    except (OSError, ValueError) as exc:
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
    return file, entries, skipped


# ------------------------------------------------------------------ LiteTransformerSearch
_RANDOM_RE = re.compile(r"^config_(\d+)$")


def _read_yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(read_regular(file, follow=True))
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        why = "nested too deeply to be read" if isinstance(exc, RecursionError) else exc
        raise BenchmarkDataError(f"{file}: cannot read YAML ({why})") from None


def _lts_config_files(folder: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(id, model_config.yaml) for both layouts archai writes: config_N/jM/ and M*/; and the
    entries that cannot be read as folders (a symbolic link loop, a dangling link), each with
    its reason: a glob passes over them in silence, and a benchmark must not shrink unsaid."""
    found, broken = [], []
    for f in folder.glob("config_*/j*/model_config.yaml"):
        if _RANDOM_RE.match(f.parent.parent.name):
            found.append((f"{f.parent.parent.name}_{f.parent.name}", f))
    for f in folder.glob("*/model_config.yaml"):
        found.append((f.parent.name, f))
    for p in folder.iterdir():
        if p.is_symlink() and not p.exists():  # stat follows the link: a loop or nothing there
            broken.append((p.name, "a symbolic link that leads nowhere (a loop, or a missing target)"))

    def key(item: tuple[str, Any]) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]

    return sorted(found, key=key), sorted(broken, key=key)


def read_archai_folder(space: SearchSpace, folder: Path, target: str) -> ReaderResult:
    """A LiteTransformerSearch folder: ``model_config.yaml`` per architecture, in either layout
    archai writes, with ``ppl_summary.yaml`` (and optional params/latency/memory summaries)."""
    if not folder.is_dir():
        raise BenchmarkDataError(
            f"{folder}: expected an LTS folder (config_*/j*/model_config.yaml or M*/...)"
        )
    files, broken = _lts_config_files(folder)
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
    entries, skipped = [], list(broken)
    for eid, file in files:
        raw = _read_yaml(file)
        if not isinstance(raw, dict):
            raise BenchmarkDataError(f"{file}: expected a mapping of config fields")
        config = _config(space, raw, str(file))
        value = _lts_ground_truth(ppl.get(eid), target)
        if value is None:
            skipped.append((eid, f"no positive numeric '{target}' in {ppl_file.name}"))
            continue
        extra = {name.removesuffix("_summary"): table[eid] for name, table in extras.items() if eid in table}
        entries.append(BenchmarkEntry(eid, config, value, extra))
    return folder, entries, skipped


def _lts_ground_truth(value: Any, target: str) -> float | None:
    """Random sets store ``{valid_ppl: x, test_ppl: y, ...}``; Pareto sets store one number."""
    if isinstance(value, dict):
        value = value.get(target)
    return float(value) if _is_number(value) and value > 0 else None  # a perplexity is positive


def _config(space: SearchSpace, raw: dict[str, Any], where: str) -> Any:
    """The space's config for a benchmark entry; a bad field becomes a data error naming ``where``."""
    try:
        return space.config_from_benchmark(raw)
    except ConfigError as exc:
        raise BenchmarkDataError(f"{where}: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Benchmark formats by the name a space's ``BenchmarkSource.reader`` gives.
READERS: dict[str, Reader] = {"nas-bench-bert": read_nas_bench_bert, "archai": read_archai_folder}
