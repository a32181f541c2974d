"""Latency and peak memory of one architecture's forward pass, measured on this machine.

What is measured is ``space.inference(model, ids)`` (for the language-model spaces: hidden
states *and* output log-probabilities) on a seeded batch of random token ids, in inference
mode, with the model in eval mode:

- **latency**: ``warmup`` untimed runs, then ``repeats`` timed runs (more, up to
  ``max_repeats``, while they disagree); the median is the figure, the quartiles and the
  minimum say how noisy it was. A single-thread CPU measurement is timed by its on-CPU time,
  so that another program taking the core does not count (:mod:`trainfree.hardware.timing`);
  the wall times are kept beside it. On CUDA every run is synchronised. On the CPU the timed
  runs follow :func:`steady_allocator`: memory a run frees is kept for the next, as in a
  serving process, so the figure is the compute, not page faults.
- **memory**: the peak inference footprint in MB, ``memory_mb = weights_mb + activation_mb``:
  what a device must hold at once to run the model. ``weights_mb`` is the parameters' size;
  ``activation_mb`` is the peak memory one forward pass *adds* on top of them. On CUDA it is
  the caching allocator's peak minus what was allocated before the run. On Linux CPUs it is
  the true high-water mark of the process's resident memory during the run: the kernel's
  peak counter (``VmHWM``) is reset just before the run (``/proc/self/clear_refs``), after
  returning freed heap memory to the system (``malloc_trim``), so ``VmHWM - VmRSS(before)``
  is exactly the largest amount of memory the run held at once. LTS instead summed the
  PyTorch profiler's per-operator allocations, which counts every activation ever
  allocated, not what is alive together (see docs/search.md for the comparison).

What measures is the backend the settings name (``torch``, ``onnx``, ``llamacpp``: one module
of :mod:`trainfree.hardware.backends` each, declared with
:func:`~trainfree.hardware.settings.register_backend`); this module only runs it, isolated.

Every measurement runs in a fresh worker process forked from a clean server (the
``forkserver`` start method), so an earlier model's allocations, caches and fragmented heap
cannot pollute the next one, and a model that runs the machine out of memory kills only its
worker: the measurement comes back as failed, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from trainfree.hardware.measurement import Measurement
from trainfree.hardware.settings import HardwareSettings, get_backend
from trainfree.runtime.workers import die_with_parent, main_hidden, too_big, worker_context


def profile_here(space: Any, config: Any, settings: HardwareSettings, seed: int = 0) -> Measurement:
    """Measure in *this* process (no isolation); :func:`profile` is what callers want."""
    t_setup = time.perf_counter()
    return get_backend(settings.backend).measure(space, config, settings, seed, t_setup)


# ----------------------------------------------------------------- isolation
def failed_measurement(exc: Exception) -> Measurement:
    """A measurement that raised, as an infeasible architecture with the reason."""
    import torch

    msg = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        msg = f"out of memory: {msg}"
    return Measurement(ok=False, error=msg[:500])


def _child(conn: Any, space: Any, config: Any, settings: HardwareSettings, seed: int, owner: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills this child
    die_with_parent(owner)
    try:
        result = profile_here(space, config, settings, seed).as_dict()
    except Exception as exc:  # reported to the parent as an infeasible architecture
        result = failed_measurement(exc).as_dict()
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send(result)
        conn.close()


def profile(
    space: Any, config: Any, settings: HardwareSettings | None = None, seed: int = 0, isolate: bool = True
) -> Measurement:
    """Latency and peak memory of ``config``, each in a fresh worker process by default.

    Never raises for a model that cannot run: an exception, a crash (e.g. the kernel killing
    the worker for memory) or a timeout all return ``Measurement(ok=False, error=...)``.
    ``isolate=False`` measures in this process (a Ray task's fresh worker), and leaves its
    allocator as :func:`steady_allocator` set it.
    """
    settings = settings or HardwareSettings()
    reason = too_big(space, config, settings)
    if reason:
        return Measurement(ok=False, error=reason)
    if not isolate:
        try:
            return profile_here(space, config, settings, seed)
        except Exception as exc:
            return failed_measurement(exc)
    ctx = worker_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, space, config, settings, seed, os.getpid()), daemon=True)
    try:
        with main_hidden():
            proc.start()
    except OSError as exc:  # killed as it started (the parent's write to it broke): transient
        child.close()
        parent.close()
        return Measurement(ok=False, error=f"measurement worker died as it started ({exc})"[:500])
    child.close()
    try:
        if parent.poll(settings.timeout_s):
            try:
                data = parent.recv()
            except EOFError:
                data = None
        else:
            proc.kill()
            proc.join()
            return Measurement(ok=False, error=f"timed out after {settings.timeout_s:.0f} s")
    finally:
        parent.close()
    proc.join()
    if data is None:
        code = proc.exitcode
        hint = " (killed: out of memory?)" if code in (-9, 137) else ""
        return Measurement(ok=False, error=f"measurement worker died with exit code {code}{hint}")
    return Measurement.from_dict(data)
