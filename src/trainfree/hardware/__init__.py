"""Hardware costs measured on the user's device: forward latency and peak memory.

``profile(space, config, HardwareSettings(...))`` runs one isolated measurement;
``MeasurementCache`` keeps them on disk by (architecture, settings, machine). What measures is a
backend: one module of :mod:`trainfree.hardware.backends` and one ``@register_backend``
declaration each (:mod:`trainfree.hardware.settings`).

The names below are imported when first asked for, so that the command line's ``--help`` can
list the backends (:mod:`.settings`) without the measuring code and its libraries.
"""

from __future__ import annotations

from trainfree._lazy import lazy_attributes

_LAZY = {
    "Measurement": "trainfree.hardware.measurement",
    "machine_info": "trainfree.hardware.measurement",
    "MeasurementCache": "trainfree.hardware.measurement_cache",
    "default_cache_dir": "trainfree.hardware.measurement_cache",
    "profile_cached": "trainfree.hardware.measurement_cache",
    "profile": "trainfree.hardware.profiler",
    "profile_here": "trainfree.hardware.profiler",
    **dict.fromkeys(
        (
            "BACKENDS",
            "DEVICES",
            "Backend",
            "HardwareSettings",
            "backend_names",
            "get_backend",
            "register_backend",
        ),
        "trainfree.hardware.settings",
    ),
}


__getattr__ = lazy_attributes("trainfree.hardware", _LAZY)


__all__ = sorted(_LAZY)
