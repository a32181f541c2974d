"""The executor seam: where proxy scoring tasks and device measurement tasks run.

An executor answers four questions for ``bench``, ``search``, ``calibrate`` and ``profile``:

- :meth:`Executor.scorer`: something that runs scoring tasks (``(key, config, proxy names)``)
  and calls ``record(key, scores)`` as each finishes (the local process pool, or Ray tasks);
- :meth:`Executor.measure`: measure configs on the device, calling ``on_result(i, result)`` as
  each finishes; the measurement cache is read and written here, on the machine that runs the
  command, keyed by :meth:`Executor.machine`;
- :meth:`Executor.machine`: the description of the *measuring* machine (the device's own,
  gathered on the device, when measurements run elsewhere), which keys the hardware cache and
  the cost model's calibration rows;
- :meth:`Executor.parallelism`: how many scoring tasks run at once (sizes the search).

Executors register themselves like spaces and proxies: one module per executor in this
package, one :func:`register_executor` declaration each.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from trainfree.errors import TrainfreeError
from trainfree.hardware.measurement import Measurement
from trainfree.hardware.settings import HardwareSettings
from trainfree.registry import Registry

#: ``{proxy: (value, seconds, error)}`` (as :data:`trainfree.proxies.runner.Scores`)
Scores = dict[str, tuple[Any, float, str | None]]
#: ``(key, config, proxy names)``
Task = tuple[Hashable, Any, list[str]]
#: where a measurement ran when it ran on this machine
LOCAL_NODE = "local"


class ExecutorError(TrainfreeError):
    """The executor cannot be used as asked (not installed, unreachable, no such device);
    the message is one line that says what to do."""


@dataclass
class MeasureResult:
    """One device measurement: the figures, whether they came from the cache, and the node
    that measured them (a Ray node id, :data:`LOCAL_NODE`, or None for a cache hit)."""

    measurement: Measurement
    cached: bool
    node: str | None


class Scorer(Protocol):
    """Runs scoring tasks; :class:`~trainfree.proxies.runner.ProxyPool` is the local one."""

    def run(self, tasks: Sequence[Task], record: Callable[[Hashable, Scores], None]) -> None: ...

    def close(self, kill: bool = False) -> None: ...


class Executor(ABC):
    """Where scoring and measurement tasks run (see the module docstring)."""

    name: ClassVar[str] = ""
    #: scoring and measuring happen on this machine, in this process's own workers: a scorer
    #: of one worker may then score in this process, and what a measurement needs installed
    #: is checked here (an executor that runs them elsewhere checks on its nodes)
    runs_here: ClassVar[bool] = False

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify or _stderr

    @abstractmethod
    def scorer(self, space: Any, settings: dict[str, Any], workers: int) -> Scorer:
        """A scorer for ``space`` (``settings`` as :func:`score_architecture` takes them)."""

    @abstractmethod
    def machine(self, device: str) -> dict[str, Any]:
        """The measuring machine's description (keys the hardware cache and cost models)."""

    @abstractmethod
    def measure(
        self,
        space: Any,
        configs: Sequence[Any],
        settings: HardwareSettings,
        cache: Any,
        seed: int,
        on_result: Callable[[int, MeasureResult], None],
    ) -> None:
        """Measure every config (through ``cache``, a MeasurementCache or None), calling
        ``on_result(i, result)`` as each finishes, in any order. Never raises for a model that
        cannot run: that is a failed measurement with the reason."""

    def check_device(self, device: str) -> None:
        """Refuse, before a search or calibration starts, a device the measuring machine
        does not have: every measurement would fail, every architecture be infeasible, and
        the command end as if it had worked. A machine with CUDA names its GPU
        (:func:`~trainfree.hardware.measurement.machine_info`)."""
        if device == "cuda" and "gpu" not in self.machine(device):
            where = "this machine" if self.runs_here else f"the measuring machine ({self.describe()})"
            raise ExecutorError(
                f"--device cuda: {where} has no CUDA GPU that torch can use "
                "(torch.cuda.is_available() is False); measure on --device cpu, or run where a GPU is"
            )

    def measure_slots(self) -> int:
        """How many measurements run at once (the devices available)."""
        return 1

    def parallelism(self) -> int:
        """How many scoring tasks run at once."""
        return 1

    def describe(self) -> str:
        return self.name

    def close(self) -> None:  # noqa: B027 - most executors hold nothing
        """Release what the executor holds (a Ray connection it opened)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


EXECUTORS: Registry[type[Executor]] = Registry("executor", "trainfree.executors")


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make an executor available as ``--executor NAME``."""

    def wrap(cls: type[Executor]) -> type[Executor]:
        cls.name = name
        return EXECUTORS.register(name, cls)

    return wrap


def make_executor(
    spec: str | None = None,
    address: str | None = None,
    measure_on: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Executor:
    """The executor a command asked for.

    ``spec``: ``local`` (the default), ``ray`` (start or join a local Ray instance) or
    ``ray://HOST:PORT``; ``address``: a Ray cluster to join (``HOST:PORT`` or ``ray://...``);
    ``measure_on``: the Ray resource a device node carries (implies Ray). Raises
    :class:`ExecutorError` with one line when the executor cannot be used."""
    spec = (spec or "").strip()
    if spec.startswith("ray://"):
        if address and address != spec:
            raise ExecutorError(f"--executor {spec} and --ray-address {address} disagree; give one")
        spec, address = "ray", spec
    if not spec:
        spec = "ray" if (address or measure_on) else "local"
    if spec not in EXECUTORS:
        raise ExecutorError(
            f"--executor '{spec}' is not an executor; expected one of {EXECUTORS.names()} or ray://HOST:PORT"
        )
    cls = EXECUTORS.get(spec)
    if spec == "local":
        if address or measure_on:
            flag = "--ray-address" if address else "--measure-on"
            raise ExecutorError(f"{flag} needs Ray; use --executor ray (or leave --executor out)")
        return cls(notify=notify)
    return cls(address=address, measure_on=measure_on, notify=notify)  # type: ignore[call-arg]


def default_executor(notify: Callable[[str], None] | None = None) -> Executor:
    """Where work runs when the caller names no executor: this machine (the local pool, one
    measurement at a time, each in a fresh process)."""
    return make_executor("local", notify=notify)


def measured_elsewhere(measured_on: Iterable[str | None], executor: Executor) -> str | None:
    """A warning when a run resumed here measured on a Ray device before (or the reverse):
    its figures would mix two machines; None when they agree. ``measured_on``: the node of
    each of the run's evaluations (None: not measured)."""
    nodes = set(measured_on) - {None}
    device = getattr(executor, "measure_on", None)
    if device and LOCAL_NODE in nodes:
        return f"this run measured on this machine before; its earlier figures are not from '{device}'"
    if not device and nodes - {LOCAL_NODE}:
        return "this run measured on a Ray device before; pass the same --measure-on to keep measuring there"
    return None
