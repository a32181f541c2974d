"""On-disk cache of proxy scores, one small JSON file per (architecture, proxy, settings).

A long ``trainfree bench --proxy all`` run stores every score as soon as it is computed, so an
interrupted run resumes where it stopped and a re-run (new ``--alpha``, a new ``--report``)
recomputes nothing. The cache is *never trusted blindly*:

- the key is the SHA-256 of everything that can change a score (:meth:`ScoreCache.spec`): the
  cache format version, the trainfree and torch versions, the space, the architecture's full
  config, the proxy's name and a hash of the source file that defines it, the seed, the batch
  size, the sequence length and the proxy options;
- an entry stores that key, the full spec and a checksum of its content; an entry that does not
  parse, is truncated, carries another key or spec (another space's, a copied file), another
  format version, a value of the wrong type or a bad checksum is reported as invalid and the
  score is recomputed (and the entry rewritten);
- entries are written atomically (a temporary file in the same folder, then ``os.replace``), so
  a killed run leaves either the old entry, the new one, or none. They are not fsync'ed: a
  power cut can at worst leave a truncated entry, which the checks above catch;
- failures (an exception in the proxy) are not cached, so a later run retries them.

A balanced proxy (``zerolm``, ``param_mix``) stores its sub-module components, not a score: the
alpha strategy is applied afterwards, so changing ``--alpha`` never recomputes anything.

Layout: ``ROOT/<space>/<proxy>/<key[:2]>/<key>.json``; ``rm -r ROOT/<space>/<proxy>`` drops one
proxy's entries. Default ``ROOT``: ``$TRAINFREE_CACHE/scores``, else
``$XDG_CACHE_HOME/trainfree/scores``, else ``~/.cache/trainfree/scores`` (hardware measurements
live beside it, in ``.../hardware``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainfree.io import atomic_write_bytes, parse_json, read_regular

#: Bump when the entry layout or the meaning of a stored value changes.
CACHE_FORMAT = 1
CACHE_ENV_VAR = "TRAINFREE_CACHE"
#: an entry is a few kB; a larger file in its place is not read (it is invalid)
MAX_ENTRY_BYTES = 1 << 20


def default_cache_dir() -> Path:
    """``$TRAINFREE_CACHE/scores``, else ``$XDG_CACHE_HOME/trainfree/scores``, else ``~/.cache/...``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser() / "scores"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "trainfree" / "scores"


@functools.cache
def _file_hash(module_name: str) -> str:
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else ""
    except OSError:
        return ""


@functools.cache
def source_fingerprint(module_name: str) -> str:
    """SHA-256 (16 hex digits) of a module's source file and of the trainfree modules it
    imports from (one level: a proxy's helpers such as ``proxies.spectral``)."""
    module = sys.modules.get(module_name)
    deps = {module_name}
    for value in vars(module).values() if module is not None else ():
        dep = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(dep, str) and dep.startswith("trainfree."):
            deps.add(dep)
    digest = hashlib.sha256()
    for name in sorted(deps):
        digest.update(f"{name}:{_file_hash(name)}\n".encode())
    return digest.hexdigest()[:16]


def proxy_fingerprint(proxy: Any) -> str:
    """Editing a proxy's file, or a trainfree module it imports from, invalidates its scores."""
    return source_fingerprint(getattr(proxy.fn, "__module__", ""))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def _checksum(payload: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def _is_float(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class CachedScore:
    """A score read from the cache: the raw value (float, or dict of components for a balanced
    proxy) and the seconds it took when it was computed."""

    value: float | dict[str, float]
    seconds: float


class ScoreCache:
    """The score cache under ``root`` (see the module docstring). Counts what it did in
    ``hits``, ``misses`` (no entry) and ``invalid`` (an entry that failed the checks)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.invalid = 0
        self.invalid_paths: list[Path] = []

    # ------------------------------------------------------------------ keys
    @staticmethod
    def spec(
        space: Any,
        config: Any,
        proxy: Any,
        seed: int,
        seq_len: int | None,
        batch_size: int | None,
        options: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Everything that can change the score of ``proxy`` on ``config``."""
        import torch

        from trainfree._version import __version__

        return {
            "format": CACHE_FORMAT,
            "trainfree": __version__,
            "torch": torch.__version__,
            "space": space.name,
            "space_class": f"{type(space).__module__}.{type(space).__qualname__}",
            "space_source": source_fingerprint(type(space).__module__),
            "config": space.config_to_dict(config),
            "proxy": proxy.name,
            "proxy_source": proxy_fingerprint(proxy),
            "proxy_version": int(getattr(proxy, "version", 1)),
            "balanced": bool(proxy.balanced),
            "seed": int(seed),
            "seq_len": seq_len,
            "batch_size": None if batch_size is None else int(batch_size),
            "options": json.loads(_canonical(options or {})),
        }

    @staticmethod
    def key(spec: dict[str, Any]) -> str:
        return hashlib.sha256(_canonical(spec).encode()).hexdigest()

    def path(self, spec: dict[str, Any], key: str | None = None) -> Path:
        key = key or self.key(spec)
        return self.root / _safe_name(spec["space"]) / _safe_name(spec["proxy"]) / key[:2] / f"{key}.json"

    # ------------------------------------------------------------------ read / write
    def get(self, spec: dict[str, Any]) -> CachedScore | None:
        """The cached score for ``spec``, or None (missing, or invalid: then it is counted and
        its path remembered, and the caller recomputes and overwrites it)."""
        key = self.key(spec)
        path = self.path(spec, key)
        try:  # a regular file only: a FIFO would block the read, a symlink point anywhere
            text = read_regular(path, limit=MAX_ENTRY_BYTES)
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError:  # UnsafeFileError included
            return self._invalid(path)
        found = _validate(text, key, spec)
        if found is None:
            return self._invalid(path)
        self.hits += 1
        return found

    def put(self, spec: dict[str, Any], value: float | dict[str, float], seconds: float) -> Path:
        key = self.key(spec)
        payload = {"key": key, "spec": spec, "value": _plain(value), "seconds": float(seconds)}
        entry = {"format": CACHE_FORMAT, **payload, "checksum": _checksum(payload)}
        path = self.path(spec, key)
        atomic_write_bytes(path, (_canonical(entry) + "\n").encode(), fsync=False)
        return path

    def _invalid(self, path: Path) -> None:
        self.invalid += 1
        self.invalid_paths.append(path)
        return None


def _validate(text: bytes | str, key: str, spec: dict[str, Any]) -> CachedScore | None:
    try:
        entry = parse_json(text)  # a structure nested too deeply is a ValueError too
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
        return None
    if entry.get("key") != key or entry.get("spec") != json.loads(_canonical(spec)):
        return None
    payload = {k: entry.get(k) for k in ("key", "spec", "value", "seconds")}
    if entry.get("checksum") != _checksum(payload):
        return None
    value, seconds = entry["value"], entry["seconds"]
    if not _is_float(seconds) or not math.isfinite(seconds) or seconds < 0:
        return None
    if spec["balanced"]:
        if not isinstance(value, dict) or not value or not all(_is_float(v) for v in value.values()):
            return None
        value = {str(k): float(v) for k, v in value.items()}
    elif _is_float(value):
        value = float(value)
    else:
        return None
    return CachedScore(value, float(seconds))


def _plain(value: Any) -> float | dict[str, float]:
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return float(value)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "_"
