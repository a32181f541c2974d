"""On-disk cache of hardware measurements.

One JSON file per measurement, named by a hash of its full key: the space, the architecture
(its config as compact JSON), the measurement settings (backend, device, batch size, sequence
length, threads, repeats) and a description of the machine (CPU model, cores, library
versions, GPU). A file is trusted only if it parses and its stored key equals the key asked
for, so a corrupt, truncated or foreign entry (another machine, another setting, a hash
collision) is ignored and measured again. Only successful measurements are cached: a failure
may be transient (a busy machine, a timeout) and is cheap to retry.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from trainfree.hardware.measurement import Measurement, machine_info
from trainfree.hardware.profiler import profile
from trainfree.hardware.settings import HardwareSettings, get_backend
from trainfree.io import atomic_write_json, read_json

#: /2: memory_mb is the footprint (weights + activations); /3: latency timed with a steady
#: allocator (``profiler.steady_allocator``); /4: a single-thread CPU latency is on-CPU time
#: (``timing``)
FORMAT = "trainfree-hardware-cache/4"
ENV_VAR = "TRAINFREE_CACHE"


def default_cache_dir() -> Path:
    """``$TRAINFREE_CACHE/hardware``, else ``$XDG_CACHE_HOME/trainfree/hardware``, else
    ``~/.cache/trainfree/hardware`` (beside the proxy-score cache of ``trainfree bench``)."""
    root = os.environ.get(ENV_VAR)
    if root:
        return Path(root).expanduser() / "hardware"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "trainfree" / "hardware"


class MeasurementCache:
    """``get``/``put`` measurements by (space, config, settings, machine)."""

    def __init__(self, root: str | Path | None = None, machine: dict[str, Any] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._machine = machine
        self.hits = 0
        self.misses = 0
        self.write_errors = 0
        self.serve = True  # False: a refreshing view (``refreshing``), which serves nothing

    def refreshing(self) -> MeasurementCache:
        """This cache for measurements that must be taken anew: it serves no entry and stores
        what is measured, under the key each executor gives (a Ray device node's machine, or
        this one's)."""
        view = copy.copy(self)
        view.serve = False
        return view

    def machine(self, device: str) -> dict[str, Any]:
        if self._machine is None:
            self._machine = machine_info(device)
        return self._machine

    def key(
        self,
        space_name: str,
        config_json: str,
        settings: HardwareSettings,
        seed: int = 0,
        machine: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The full key; ``machine``: the measuring machine's description when it is not this
        one (a device measured through Ray, described on the device)."""
        out = {
            "space": space_name,
            "config": config_json,
            "settings": {k: v for k, v in settings.as_dict().items() if k != "timeout_s"},
            "seed": seed,
            "machine": machine if machine is not None else self.machine(settings.device),
        }
        out.update(get_backend(settings.backend).key_fields())  # kept out of the machine
        return out

    def _path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: dict[str, Any]) -> Measurement | None:
        if not self.serve:
            return None
        path = self._path(key)
        try:
            entry = read_json(path, limit=1 << 20)  # a regular file only (a FIFO never blocks)
            if entry.get("format") != FORMAT or entry.get("key") != key:
                raise ValueError("foreign entry")
            measurement = Measurement.from_dict(entry["measurement"])
            if not measurement.ok:
                raise ValueError("failed measurements are not cached")
            if measurement.measured_at is None:  # cached before the time was kept: when written
                measurement.measured_at = path.stat().st_mtime
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.misses += 1
            return None
        self.hits += 1
        return measurement

    def put(self, key: dict[str, Any], measurement: Measurement) -> None:
        """Store a successful measurement. A cache that cannot be written (a full disk, a
        file where the folder should be) costs a later run time only: one warning, and the
        measurement is still used."""
        if not measurement.ok:
            return
        try:
            atomic_write_json(
                self._path(key), {"format": FORMAT, "key": key, "measurement": measurement.as_dict()}
            )
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors == 1:
                warnings.warn(
                    f"the hardware cache could not be written ({exc}); measurements are used, not cached",
                    RuntimeWarning,
                    stacklevel=2,
                )


def profile_cached(
    space: Any,
    config: Any,
    settings: HardwareSettings,
    cache: MeasurementCache | None,
    seed: int = 0,
) -> tuple[Measurement, bool]:
    """``(measurement, from_cache)``: the cached figure if a valid one exists, else a fresh
    isolated measurement (stored when it succeeded)."""
    if cache is None:
        return profile(space, config, settings, seed), False
    key = cache.key(space.name, space.config_to_json(config), settings, seed)
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    result = profile(space, config, settings, seed)
    cache.put(key, result)
    return result, False
