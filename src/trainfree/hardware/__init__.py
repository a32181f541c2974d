"""Hardware costs measured on the user's device: forward latency and peak memory.

``profile(space, config, HardwareSettings(...))`` runs one isolated measurement;
``MeasurementCache`` keeps them on disk by (architecture, settings, machine). What measures is a
backend: one module of :mod:`trainfree.hardware.backends` and one ``@register_backend``
declaration each (:mod:`trainfree.hardware.settings`).
"""

from trainfree.hardware.measurement import Measurement, machine_info
from trainfree.hardware.measurement_cache import MeasurementCache, default_cache_dir, profile_cached
from trainfree.hardware.profiler import profile, profile_here
from trainfree.hardware.settings import (
    BACKENDS,
    DEVICES,
    Backend,
    HardwareSettings,
    backend_names,
    get_backend,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "DEVICES",
    "Backend",
    "HardwareSettings",
    "Measurement",
    "MeasurementCache",
    "backend_names",
    "default_cache_dir",
    "get_backend",
    "machine_info",
    "profile",
    "profile_cached",
    "profile_here",
    "register_backend",
]
