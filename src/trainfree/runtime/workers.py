"""The processes that measure and score: fork-server workers, their lifetime, and the memory
guard that keeps a model too large for this machine from being built at all.

Workers are started by Python's ``forkserver`` (children fork from a clean server that has
imported torch once, in milliseconds) without the user's main script, die with the process
that owns them, and leave Ctrl-C to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

MB = 1024.0 * 1024.0


def cpu_workers() -> int:
    """One worker per CPU this process may run on, at most 8: the default of ``bench``,
    ``search`` and the local executor alike."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


#: building a model holds its weights and the initialisers' temporaries: about twice the weights
BUILD_FACTOR = 2.5


def available_mb() -> float:
    """Memory the system can still give (``MemAvailable``), in MB; infinite if unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MB
    return math.inf


def too_big(space: Any, config: Any, settings: Any = None) -> str | None:
    """Why ``config`` cannot be built here (None if it can): its float32 weights, counted
    analytically, times :data:`BUILD_FACTOR`, plus (measuring generation) its KV cache at
    the context, against the memory available now. Other activations are not estimated; a
    model that fits but whose forward pass runs out of memory kills only its worker."""
    need = space.param_counts(config).total * 4 / MB * BUILD_FACTOR
    what = f"{BUILD_FACTOR} x its float32 weights"
    if getattr(settings, "mode", "forward") == "generate" and hasattr(space, "kv_cache_mb"):
        need += space.kv_cache_mb(config, settings.context, settings.batch_size)
        what += f" + its KV cache at context {settings.context}"
    have = available_mb()
    if need > have:
        return (
            f"out of memory by estimate: it needs about {need:,.0f} MB ({what}), {have:,.0f} MB are available"
        )
    return None


def die_with_parent(owner: int | None = None) -> None:
    """End this worker when the process that owns it dies, so no orphan holds memory.

    Linux kills a process whose *parent* dies (``PR_SET_PDEATHSIG``), but a forkserver child's
    parent is the fork server, which itself lives as long as any of its children: so a
    daemon thread also watches ``owner`` (the pid of the process that asked for the worker)
    and exits when it is gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    if owner is not None and owner != os.getpid():
        import threading

        def watch() -> None:
            while True:
                time.sleep(0.5)
                try:
                    os.kill(owner, 0)
                except ProcessLookupError:
                    os._exit(1)
                except PermissionError:  # pragma: no cover - alive, another user's
                    pass

        threading.Thread(target=watch, name="trainfree-owner-watch", daemon=True).start()


_CONTEXT: Any = None


def worker_context() -> Any:
    """The forkserver context (fresh, clean children that start in milliseconds: the server
    has imported torch once) where the platform has one, else spawn."""
    global _CONTEXT
    if _CONTEXT is None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        _CONTEXT = mp.get_context(method)
        if method == "forkserver":
            # imported once by the server, not by every child; torch._dynamo is what the first
            # build under a ``torch.device`` context imports lazily (about 2 s)
            _CONTEXT.set_forkserver_preload(
                [
                    "trainfree.runtime._forkserver",  # first: Ctrl-C and a failed start (its docstring)
                    "torch",
                    "trainfree.hardware.profiler",  # by name: the runtime imports no package above it
                    "trainfree.hardware.memory_probes",
                    "trainfree.hardware.quantize",
                    "trainfree.spaces",
                    "trainfree.proxies",
                    "torch._dynamo",
                ]
            )
            from multiprocessing import forkserver

            from trainfree.signals import sigint_ignored

            with sigint_ignored():  # the server's seconds of imports: a Ctrl-C is its owner's to handle
                forkserver.ensure_running()
    return _CONTEXT


@contextlib.contextmanager
def main_hidden() -> Any:
    """Start worker processes without the main script.

    A child started by forkserver or spawn re-runs the parent's main script (``__main__``)
    unless it is guarded by ``if __name__ == "__main__":``, so a user's plain script that
    calls :func:`profile` would start itself again. Workers only run trainfree functions, so
    they never need the script: while a child starts, ``__main__`` shows no file to re-run."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
    if main is not None:
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)
