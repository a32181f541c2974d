"""Hardware costs measured on the user's device: forward latency and peak memory.

``profile(space, config, HardwareSettings(...))`` runs one isolated measurement;
``MeasurementCache`` keeps them on disk by (architecture, settings, machine).
"""

from trainfree.hardware.measurement_cache import MeasurementCache, default_cache_dir, profile_cached
from trainfree.hardware.profiler import (
    BACKENDS,
    DEVICES,
    HardwareSettings,
    Measurement,
    machine_info,
    profile,
    profile_here,
)

__all__ = [
    "BACKENDS",
    "DEVICES",
    "HardwareSettings",
    "Measurement",
    "MeasurementCache",
    "default_cache_dir",
    "machine_info",
    "profile",
    "profile_cached",
    "profile_here",
]
