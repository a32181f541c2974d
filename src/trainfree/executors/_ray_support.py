"""What the Ray executor runs on the nodes (the task functions, imported there by module
name: trainfree must be installed on every node) and how it connects (a TCP check first, so
a wrong address is one line within seconds; Ray's errors as one line)."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from trainfree.executors.base import ExecutorError, Scores
from trainfree.hardware.measurement import machine_info
from trainfree.hardware.settings import HardwareSettings

INSTALL = "Ray is not installed; install it with: pip install 'trainfree[ray]'"
#: seconds to wait for a TCP connection to the cluster before calling it unreachable
CONNECT_TIMEOUT_S = 3.0
#: the object store of a local instance this executor starts (results are small)
LOCAL_OBJECT_STORE = 256 * 1024 * 1024
#: a measurement not back after its timeout plus this (worker start-up) is cancelled
STARTUP_GRACE_S = 60.0
#: seconds between checks while waiting (Ctrl-C is seen within one)
POLL_S = 0.5


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(INSTALL) from None
    return ray


# ------------------------------------------------------------------ what runs on the nodes
_THREADS: dict[str, int] = {}


def score_task(space: Any, settings: dict[str, Any], config: Any, names: list[str]) -> Scores:
    """A scoring task: one architecture, several proxies, one torch thread (one CPU)."""
    import torch

    from trainfree.proxies.runner import score_architecture

    if _THREADS.get("n") != 1:
        torch.set_num_threads(1)
        _THREADS["n"] = 1
    return score_architecture(space, config, names, **settings)


def measure_task(space: Any, config: Any, settings: HardwareSettings, seed: int) -> tuple[dict, str]:
    """A measurement task (a fresh worker): the figures as a dict and the node's id."""
    import ray

    from trainfree.hardware.profiler import profile

    node = ray.get_runtime_context().get_node_id()
    # in this fresh worker, as the local child does: the memory guard, then the measurement;
    # an exception (out of memory, an export failure) is an infeasible architecture
    return profile(space, config, settings, seed, isolate=False).as_dict(), node


def describe_task() -> dict[str, Any]:
    """The device node's description (per measuring device) and its trainfree version."""
    from trainfree._version import __version__
    from trainfree.hardware.settings import DEVICES

    return {"machines": {d: machine_info(d) for d in DEVICES}, "trainfree": __version__}


# ------------------------------------------------------------------ connecting
def host_port(address: str) -> tuple[str, int]:
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--ray-address '{address}' is not HOST:PORT or ray://HOST:PORT")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ExecutorError` unless something listens at ``address`` (within ``timeout``)."""
    host, port = host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ExecutorError(
            f"cannot reach the Ray cluster at {address} ({why}); is `ray start --head` running there "
            f"and the port open?"
        ) from None


def one_line(exc: BaseException, address: str) -> str:
    """Ray's multi-line connection errors as one line."""
    text = " ".join(str(exc).split())
    if "version mismatch" in text.lower():
        return f"Ray version mismatch with the cluster at {address}: {text}; install the same Ray and Python"
    return f"cannot join the Ray cluster at {address}: {type(exc).__name__}: {text[:300]}"


def found_address() -> str | None:
    """``$RAY_ADDRESS`` or the instance ``ray start`` left on this machine; None: none."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    with contextlib.suppress(Exception):  # a private Ray helper: if it moved, start a local instance
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None)
    return None
