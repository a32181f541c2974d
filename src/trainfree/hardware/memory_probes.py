"""Peak-memory probes of one forward pass, and the allocator setting of the timed runs.

What ``memory_mb`` means and why it is measured this way is in
:mod:`trainfree.hardware.profiler`'s docstring; these are the probes it uses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

MB = 1024.0 * 1024.0


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def _release_free_heap() -> None:
    """Give freed heap pages back to the system, so they cannot hide the next run's growth."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


#: glibc's ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def steady_allocator() -> None:
    """Make the C allocator keep what a forward pass frees (glibc only; elsewhere a no-op).

    By default glibc serves large blocks with ``mmap`` and hands freed memory back to the
    system, with thresholds that it moves as blocks are freed. Each timed run then page-faults
    a share of its buffers that follows the order and sizes of its allocations, not its
    compute: GPT-2 models of similar shape differed by up to 20% for that alone, and the cost
    model's held-out share within +-10% stayed near 80% (docs/search.md). A serving process
    in steady state reuses its memory (a caching allocator, ONNX Runtime's arena, CUDA's
    caching allocator), so the timed runs do too: no ``mmap``, no trimming. It is called
    after the memory run, whose peak is thus taken as before, from a fresh heap."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def cpu_peak_probe() -> tuple[str, Callable[[], None], Callable[[], float]]:
    """``(method, start, stop)``: ``stop()`` returns the peak MB added since ``start()``.

    ``vmhwm`` (Linux: exact high-water mark) when the kernel lets us reset the peak counter,
    else ``ru_maxrss`` (the process's lifetime peak; exact only when the run sets a new peak,
    which in a fresh worker it usually does)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kb("VmHWM")
    except OSError:
        import resource

        scale = 1.0 if platform.system() == "Darwin" else 1024.0  # bytes vs KiB
        state: dict[str, float] = {}

        def start_rss() -> None:
            state["before"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

        def stop_rss() -> float:
            return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale - state["before"]) / MB

        return "ru_maxrss", start_rss, stop_rss

    state_kb: dict[str, int] = {}

    def start() -> None:
        _release_free_heap()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        state_kb["before"] = _status_kb("VmRSS")

    def stop() -> float:
        return max(0, _status_kb("VmHWM") - state_kb["before"]) / 1024.0

    return "vmhwm", start, stop


def cuda_peak_probe() -> tuple[str, Callable[[], None], Callable[[], float]]:
    """``(method, start, stop)`` for CUDA: the caching allocator's peak minus what was
    allocated at ``start()``, in MB (``stop()`` synchronises first)."""
    state: dict[str, int] = {}

    def start() -> None:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        state["before"] = torch.cuda.memory_allocated()

    def stop() -> float:
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - state["before"]) / MB

    return "cuda-allocator", start, stop
