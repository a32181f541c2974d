"""The Ray executor: proxies scored on a Ray cluster, measurements on a named device node.

- ``--executor ray`` joins the Ray instance in ``$RAY_ADDRESS`` or the one ``ray start`` left
  on this machine, else starts a private local one (stopped at the end);
  ``--executor ray://HOST:PORT`` (Ray Client) or ``--ray-address HOST:PORT`` joins a cluster.
  The address is tried with a plain TCP connection first (3 s), so a wrong one is one line
  within seconds, never a hang; a Ray or Python version mismatch is one line too.
- **Scoring**: one Ray task per architecture (1 CPU each, at most two per cluster CPU in
  flight); the space is put in the object store once. A task whose worker or node dies is
  retried by Ray on another node (``max_retries``); one that still fails is reported like a
  dead local worker. A task whose proxy raises is a failed score with the reason, as locally.
- **Measuring** (``--measure-on LABEL``): every measurement is a task that asks for one unit
  of the custom resource ``LABEL`` and runs in a fresh worker (``max_calls=1``); a device
  node carries exactly one unit, so it never runs two at once, and several such nodes
  measure in parallel. The machine description (hardware cache key, cost model rows) is
  gathered on the device nodes. If a device node dies mid-measurement the measurement is
  sent again to another one; while none is alive the run waits and says so (Ctrl-C stops it;
  ``--resume`` continues). A measurement that raises (out of memory, export failure) is an
  infeasible architecture with the reason, as locally. The cache is read and written here.
- Ctrl-C (or any exception) cancels every outstanding task (``ray.cancel(force=True)``).

Ray is imported only when this executor is made; without it the error says how to install it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from trainfree.executors._ray_support import (
    LOCAL_OBJECT_STORE,
    POLL_S,
    STARTUP_GRACE_S,
    check_reachable,
    describe_task,
    found_address,
    import_ray,
    measure_task,
    one_line,
    score_task,
)
from trainfree.executors.base import (
    Executor,
    ExecutorError,
    MeasureResult,
    Scores,
    Task,
    register_executor,
)
from trainfree.hardware.measurement import Measurement, machine_info
from trainfree.hardware.settings import HardwareSettings


@register_executor("ray")
class RayExecutor(Executor):
    """Scoring on a Ray cluster; measuring on the nodes carrying ``measure_on`` (see the module)."""

    def __init__(
        self,
        address: str | None = None,
        measure_on: str | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(notify)
        self.ray = import_ray()
        self.measure_on = measure_on
        self.address = address
        self._owns = False
        self._machines: dict[str, dict[str, Any]] = {}
        self._connect()
        try:
            self._score_fn = self.ray.remote(num_cpus=1, max_retries=3)(score_task)
            self._measure_fn = None
            if measure_on:
                self._check_label()
                self._describe_devices()
                self._measure_fn = self.ray.remote(
                    num_cpus=0, resources={measure_on: 1}, max_calls=1, max_retries=0
                )(measure_task)
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------------- connection
    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # the caller (a notebook, a test) connected already
            self.where = "the connected Ray instance"
            return
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
        target = self.address or found_address()
        if target:
            check_reachable(target)
            if target.startswith("ray://"):
                quiet.pop("include_dashboard")
            try:
                ray.init(address=target, **quiet)
            except Exception as exc:  # version mismatch, a port that is not Ray's
                with contextlib.suppress(Exception):
                    ray.shutdown()
                raise ExecutorError(one_line(exc, target)) from None
            self.where = target
        else:
            ray.init(object_store_memory=LOCAL_OBJECT_STORE, **quiet)
            self.where = "a local Ray instance"
        self._owns = True

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns = False

    def describe(self) -> str:
        return f"ray ({self.where})" + (f", measuring on '{self.measure_on}'" if self.measure_on else "")

    def parallelism(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def device_nodes(self) -> list[str]:
        """The ids of the alive nodes carrying the measurement resource."""
        label = self.measure_on
        return [
            n["NodeID"]
            for n in self.ray.nodes()
            if n.get("Alive") and label and n.get("Resources", {}).get(label, 0) > 0
        ]

    def measure_slots(self) -> int:
        return max(1, len(self.device_nodes())) if self.measure_on else 1

    def _check_label(self) -> None:
        label = self.measure_on
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        carrying = [n for n in nodes if n.get("Resources", {}).get(label, 0) > 0]
        if not carrying:
            custom = sorted(
                {
                    r
                    for n in nodes
                    for r in n.get("Resources", {})
                    if r not in ("CPU", "GPU", "memory")
                    and not r.startswith(("node:", "object_store_memory", "accelerator_type"))
                }
            )
            raise ExecutorError(
                f"--measure-on '{label}': no node of {self.where} carries that resource"
                f" (custom resources there: {', '.join(custom) or 'none'}); start the device with "
                f"`ray start --address=HEAD:6379 --num-cpus=0 --resources='{{\"{label}\": 1}}'`"
            )
        for n in carrying:
            if n["Resources"][label] != 1:
                raise ExecutorError(
                    f"--measure-on '{label}': node {n['NodeManagerAddress']} carries "
                    f"{n['Resources'][label]:g} units of it; a device carries exactly 1 (one measurement "
                    "at a time)"
                )

    # -------------------------------------------------------------- machine
    def machine(self, device: str) -> dict[str, Any]:
        """This machine's description, or with ``measure_on`` the device nodes' (gathered on
        them when the executor was made; they must agree: one label, one kind of device)."""
        if not self.measure_on:
            return machine_info(device)
        return self._machines[device]

    def _describe_devices(self) -> None:
        """Ask every node carrying the label for its description (per measuring device: cpu,
        cuda) and trainfree version; nodes that leave meanwhile are passed over."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from trainfree._version import __version__

        ray, label = self.ray, self.measure_on
        fn = ray.remote(num_cpus=0, max_retries=0)(describe_task)
        nodes = self.device_nodes()
        refs = [
            fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
            for node in nodes
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=120)
        found, errors = [], []
        for node, ref in zip(nodes, refs, strict=True):
            if ref not in ready:
                ray.cancel(ref, force=True)
                errors.append("no answer within 120 s")
                continue
            try:
                found.append(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:  # e.g. trainfree not installed there
                errors.append(" ".join(str(getattr(exc, "cause", None) or exc).split())[:300])
            except ray.exceptions.RayError as exc:  # the node left meanwhile, or it failed
                if node in self.device_nodes():
                    errors.append(f"{type(exc).__name__}: " + " ".join(str(exc).split())[:300])
        if errors or not found:
            raise ExecutorError(
                f"a node carrying '{label}' cannot run trainfree ({errors[0] if errors else 'it left'}); "
                "install the same trainfree there"
            )
        versions = {f["trainfree"] for f in found}
        if versions != {__version__}:
            raise ExecutorError(
                f"the nodes carrying '{label}' run trainfree {', '.join(sorted(versions))}, this machine "
                f"{__version__}; install the same version"
            )
        machines = {json.dumps(f["machines"], sort_keys=True) for f in found}
        if len(machines) > 1:
            raise ExecutorError(
                f"the nodes carrying '{label}' are different machines ({' | '.join(sorted(machines))}); "
                "give each kind of device its own resource name"
            )
        # a figure timed in a Ray worker is kept apart from one timed in a local forkserver child
        # of the same machine (bench_ray.py measured medians 20-40% apart on a busy 2-core box)
        self._machines = {d: {**m, "measured_in": "ray worker"} for d, m in found[0]["machines"].items()}

    # -------------------------------------------------------------- scoring
    def scorer(self, space: Any, settings: dict[str, Any], workers: int) -> RayScorer:
        return RayScorer(self, space, settings)

    # -------------------------------------------------------------- measuring
    def measure(
        self,
        space: Any,
        configs: Sequence[Any],
        settings: HardwareSettings,
        cache: Any,
        seed: int,
        on_result: Callable[[int, MeasureResult], None],
    ) -> None:
        if not self.measure_on:  # measurements stay on this machine
            from trainfree.executors.local import measure_locally

            measure_locally(space, configs, settings, cache, seed, on_result)
            return
        machine = self.machine(settings.device)
        keys: dict[int, dict[str, Any]] = {}
        queue: deque[int] = deque()
        for i, config in enumerate(configs):
            if cache is not None:
                keys[i] = cache.key(space.name, space.config_to_json(config), settings, seed, machine=machine)
                hit = cache.get(keys[i])
                if hit is not None:
                    on_result(i, MeasureResult(hit, True, None))
                    continue
            queue.append(i)
        if not queue:
            return
        ray = self.ray
        space_ref = ray.put(space)
        inflight: dict[Any, tuple[int, float, frozenset[str]]] = {}
        waiting_since: float | None = None
        try:
            while queue or inflight:
                nodes = frozenset(self.device_nodes())
                if not nodes:
                    waiting_since = self._waiting(waiting_since)
                    time.sleep(POLL_S)
                    continue
                waiting_since = None
                while queue and len(inflight) < len(nodes):
                    i = queue.popleft()
                    ref = self._measure_fn.remote(space_ref, configs[i], settings, seed)  # type: ignore[union-attr]
                    inflight[ref] = (i, time.monotonic(), nodes)
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
                for ref in done:
                    i, _, nodes_then = inflight.pop(ref)
                    try:
                        data, node = ray.get(ref)
                        m = Measurement.from_dict(data)
                    except ray.exceptions.RayError as exc:
                        if self._node_lost(exc, nodes_then):
                            self.notify(
                                f"a node carrying '{self.measure_on}' left the cluster during a measurement; "
                                "measuring that architecture again"
                            )
                            queue.appendleft(i)
                            continue
                        m, node = self._failure(exc), None
                    if cache is not None and m.ok:
                        with contextlib.suppress(OSError):  # a full disk costs a re-measurement later
                            cache.put(keys[i], m)
                    on_result(i, MeasureResult(m, False, node))
                self._expire(inflight, settings, on_result)
        except BaseException:
            for ref in inflight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise

    def _waiting(self, since: float | None) -> float:
        now = time.monotonic()
        if since is None or now - since > 300:
            self.notify(
                f"waiting for a node carrying '{self.measure_on}' (none is alive in {self.where}); start "
                f'one with `ray start --address=HEAD:6379 --num-cpus=0 --resources=\'{{"{self.measure_on}": '
                "1}'`, or press Ctrl-C and continue later with --resume"
            )
            return now
        return since

    def _node_lost(self, exc: Exception, nodes_then: frozenset[str]) -> bool:
        """Whether a failed measurement failed because its device node left (not the model)."""
        errors = self.ray.exceptions
        if isinstance(exc, errors.RayTaskError):
            return False
        if isinstance(exc, (errors.NodeDiedError, errors.LocalRayletDiedError)):
            return True
        text = str(exc)
        if "node it was running on is dead" in text or "node was preempted" in text:
            return True
        return bool(nodes_then - set(self.device_nodes()))

    def _failure(self, exc: Exception) -> Measurement:
        ray = self.ray
        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = getattr(exc, "cause", None) or exc
            msg = f"measurement task failed: {type(cause).__name__}: {cause}"
            return Measurement(ok=False, error=msg[:500])
        if isinstance(exc, ray.exceptions.OutOfMemoryError):
            return Measurement(ok=False, error="out of memory: the device node's memory monitor killed it")
        text = " ".join(str(exc).split())[:200]
        return Measurement(
            ok=False, error=f"measurement worker died on the device (killed: out of memory?): {text}"
        )

    def _expire(
        self,
        inflight: dict[Any, tuple[int, float, frozenset[str]]],
        settings: HardwareSettings,
        on_result: Callable[[int, MeasureResult], None],
    ) -> None:
        """Cancel measurements running past their timeout (plus the worker's start-up)."""
        now = time.monotonic()
        for ref, (i, t0, _) in list(inflight.items()):
            if now - t0 > settings.timeout_s + STARTUP_GRACE_S and self.device_nodes():
                with contextlib.suppress(Exception):
                    self.ray.cancel(ref, force=True)
                del inflight[ref]
                m = Measurement(ok=False, error=f"timed out after {settings.timeout_s:.0f} s")
                on_result(i, MeasureResult(m, False, None))


class RayScorer:
    """Scoring tasks on the cluster (the Ray counterpart of the local ``ProxyPool``)."""

    def __init__(self, executor: RayExecutor, space: Any, settings: dict[str, Any]) -> None:
        self.executor, self.space, self.settings = executor, space, dict(settings)
        self._space_ref: Any = None

    def run(self, tasks: Sequence[Task], record: Callable[[Hashable, Scores], None]) -> None:
        """Run ``tasks``, calling ``record(key, scores)`` as each finishes (in any order)."""
        ray = self.executor.ray
        if self._space_ref is None:
            self._space_ref = ray.put(self.space)
        limit = 2 * self.executor.parallelism()
        queue: deque[Task] = deque(tasks)
        inflight: dict[Any, Task] = {}
        idle_since = time.monotonic()
        try:
            while queue or inflight:
                while queue and len(inflight) < limit:
                    task = queue.popleft()
                    ref = self.executor._score_fn.remote(self._space_ref, self.settings, task[1], task[2])
                    inflight[ref] = task
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
                if done:
                    done, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0)
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > 60 and not ray.cluster_resources().get("CPU"):
                    self.executor.notify(f"waiting for a node with CPUs in {self.executor.where}")
                    idle_since = time.monotonic()
                for ref in done:
                    task = inflight.pop(ref)
                    record(task[0], self._result(ref, task))
        except BaseException:  # Ctrl-C, SIGTERM: cancel what is outstanding
            for ref in inflight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise

    def _result(self, ref: Any, task: Task) -> Scores:
        ray = self.executor.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the task failed outside the proxies
            cause = getattr(exc, "cause", None) or exc
            msg = f"worker: {type(cause).__name__}: {cause}"[:500]
        except ray.exceptions.RayError:  # worker or node died, retries spent
            msg = "worker process died (killed, e.g. out of memory)"
        return {name: (None, 0.0, msg) for name in task[2]}

    def close(self, kill: bool = False) -> None:
        self._space_ref = None
