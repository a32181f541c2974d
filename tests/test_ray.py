"""The Ray executor on a real three-node cluster on this machine (``ray.cluster_utils.Cluster``):
a head (1 CPU), a worker (1 CPU) and a device node (no CPU, the custom resource ``dev``).

Scores equal the local pool's; ``search --measure-on dev`` measures only on the device node
(the node id is recorded with each measurement); a node killed mid-run loses nothing and
measures nothing twice; a task that raises is an infeasible architecture with the reason, as
locally; Ctrl-C cancels what is outstanding; bad input is one line, exit 2, within seconds,
and leaves no run directory.
"""

from __future__ import annotations

import _thread
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from trainfree import cli  # noqa: E402
from trainfree.executors import ExecutorError, make_executor  # noqa: E402
from trainfree.hardware import HardwareSettings  # noqa: E402
from trainfree.spaces import get_space  # noqa: E402

TINY = {"n_layer": [1, 2], "d_model": [64], "d_inner": [128, 256], "d_embed": [-1], "div_val": [1]}
STORE = 80 * 1024 * 1024  # object store per node: results are small
HW = HardwareSettings(seq_len=16, warmup=0, repeats=1)
PROXIES = ["zerolm", "params"]


@pytest.fixture(scope="module")
def cluster():
    # classes of this module (slow or failing spaces) travel to the workers by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": STORE,
            "include_dashboard": False,
            # a killed node is noticed within about a second
            "_system_config": {"health_check_period_ms": 300, "health_check_failure_threshold": 3},
        },
    )
    c.add_node(num_cpus=1, object_store_memory=STORE)
    c.device = c.add_node(num_cpus=0, object_store_memory=STORE, resources={"dev": 1})
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def bench(data_dir):
    from trainfree.bench.loaders import load_benchmark

    full = load_benchmark("gpt2")
    return dataclasses.replace(full, entries=full.entries[:8])


@pytest.fixture(scope="module")
def local_scores(bench):
    from trainfree.bench.harness import run_benchmark

    result = run_benchmark(bench, PROXIES, workers=2)  # the local pool
    return {name: run.scores for name, run in result.runs.items()}


class SlowSpace:
    """Wraps a space: every build first sleeps ``delay`` seconds (or raises ``fail``); with
    ``marks`` a build leaves a file named by its node's id there as it starts."""

    def __init__(self, space, delay: float = 0.0, fail: str | None = None, marks: str | None = None) -> None:
        self.inner, self.delay, self.fail, self.marks = space, delay, fail, marks

    def __getattr__(self, name):
        if name.startswith("__") or name == "inner":  # unpickling looks these up before __dict__ is set
            raise AttributeError(name)
        return getattr(self.inner, name)

    def build(self, config, seed: int = 0):
        if self.marks:
            (Path(self.marks) / ray.get_runtime_context().get_node_id()).touch()
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError(self.fail)
        return self.inner.build(config, seed=seed)


def _executor(cluster, measure_on=None, messages=None):
    return make_executor(address=cluster.address, measure_on=measure_on, notify=(messages or []).append)


def test_bench_on_ray_equals_the_local_pool(cluster, bench, local_scores):
    from trainfree.bench.harness import run_benchmark

    ex = _executor(cluster)
    try:
        result = run_benchmark(bench, PROXIES, workers=2, executor=ex)
    finally:
        ex.close()
    for name in PROXIES:
        assert not result.runs[name].errors
        assert np.array_equal(result.runs[name].scores, local_scores[name]), name


def test_search_measure_on_measures_only_on_the_device(cluster, tmp_path):
    out = tmp_path / "run"
    args = ["search", "--out", str(out), "--objectives", "latency,memory", "--costs", "measured"]
    args += ["--budget", "4", "--pop-size", "4", "--seq-len", "16", "--warmup", "0", "--repeats", "1"]
    args += ["--no-cache", "--ray-address", cluster.address, "--measure-on", "dev"]
    for key, values in TINY.items():
        args += ["--set", f"{key}={json.dumps(values)}"]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
    measured = [r for r in records if r.get("measured")]
    assert len(measured) == 4
    assert {r["measured_on"] for r in measured} == {cluster.device.node_id}
    assert all(r["latency_ms"] > 0 and r["memory_mb"] > r["weights_mb"] > 0 for r in measured)


def test_a_killed_worker_node_loses_no_score(cluster, bench, local_scores, tmp_path):
    from trainfree.bench.harness import run_benchmark

    victim = cluster.add_node(num_cpus=1, object_store_memory=STORE)
    slow = dataclasses.replace(bench, space=SlowSpace(bench.space, delay=0.5, marks=str(tmp_path)))
    ex = _executor(cluster)
    killer = threading.Thread(target=_kill_when_busy, args=(cluster, victim, tmp_path))
    try:
        killer.start()
        result = run_benchmark(slow, PROXIES, workers=2, executor=ex)
    finally:
        killer.join()
        ex.close()
    assert (tmp_path / victim.node_id).exists()  # the victim was killed while it scored
    for name in PROXIES:
        assert not result.runs[name].errors
        assert np.array_equal(result.runs[name].scores, local_scores[name]), name


def _kill_when_busy(cluster, node, marks: Path, seconds: float = 60.0) -> None:
    """Kill ``node`` as soon as a task has started building a model there."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (marks / node.node_id).exists():
        time.sleep(0.05)
    cluster.remove_node(node, allow_graceful=False)


def test_a_killed_device_node_measures_again_elsewhere_and_nothing_twice(cluster, tmp_path):
    space = get_space("gpt2", **TINY)
    configs = [space.sample(np.random.default_rng(i)) for i in range(2)]
    spare = cluster.add_node(num_cpus=0, object_store_memory=STORE, resources={"dev": 1})
    ex = _executor(cluster, "dev")
    got: list = []
    killer = threading.Thread(target=_kill_when_busy, args=(cluster, spare, tmp_path))
    try:
        assert ex.measure_slots() == 2  # two devices carry the label: they measure in parallel
        killer.start()
        slow = SlowSpace(space, delay=2.0, marks=str(tmp_path))
        ex.measure(slow, configs, HW, None, 0, lambda i, r: got.append((i, r)))
    finally:
        killer.join()
        ex.close()
    assert sorted(i for i, _ in got) == [0, 1]  # each exactly once
    assert all(r.measurement.ok for _, r in got), [r.measurement.error for _, r in got]
    assert {r.node for _, r in got} == {cluster.device.node_id}
    assert (tmp_path / spare.node_id).exists()  # the spare was killed while it measured


def test_a_measurement_that_raises_is_infeasible_with_the_reason(cluster):
    from trainfree.hardware.profiler import profile

    space = get_space("gpt2", **TINY)
    failing = SlowSpace(space, fail="CUDA out of memory (test)")
    cfg = space.sample(np.random.default_rng(0))
    ex = _executor(cluster, "dev")
    got: list = []
    try:
        ex.measure(failing, [cfg], HW, None, 0, lambda i, r: got.append(r))
    finally:
        ex.close()
    local = profile(failing, cfg, HW, isolate=False)
    assert not got[0].measurement.ok and got[0].node == cluster.device.node_id
    assert got[0].measurement.error == local.error == "out of memory: RuntimeError: CUDA out of memory (test)"


def _free(resource: str, want: float, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if ray.available_resources().get(resource, 0) >= want:
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_cancels_outstanding_tasks(cluster, bench):
    from trainfree.proxies.runner import ProxyRunner

    ex = _executor(cluster, "dev")
    try:
        slow = SlowSpace(bench.space, delay=60.0)
        runner = ProxyRunner(slow, workers=2, executor=ex)
        threading.Timer(1.5, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            runner.score([e.config for e in bench.entries], ["zerolm"], lambda i, s: None)
        assert _free("CPU", 2.0)  # the 60 s tasks were cancelled, not left running
        threading.Timer(1.5, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            ex.measure(slow, [bench.entries[0].config], HW, None, 0, lambda i, r: None)
        assert _free("dev", 1.0)
    finally:
        ex.close()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--executor", "ray://127.0.0.1:1"], "cannot reach the Ray cluster at ray://127.0.0.1:1"),
        (["--measure-on", "pi4"], "no node of"),
        (["--executor", "dask"], "--executor 'dask' is not an executor"),
    ],
)
def test_bad_input_is_one_line_within_seconds_and_no_run_directory(cluster, tmp_path, extra, expected):
    if extra[0] == "--measure-on":
        extra = [*extra, "--ray-address", cluster.address]
    out = tmp_path / "run"
    t0 = time.monotonic()
    res = CliRunner().invoke(cli.app, ["search", "--out", str(out), "--objectives", "params", *extra])
    assert res.exit_code == 2, res.output
    assert expected in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) <= 3  # one line (wrapped by the console at most)
    assert time.monotonic() - t0 < 15 and not out.exists()


def test_a_ray_version_mismatch_is_one_line(cluster, monkeypatch):
    monkeypatch.setattr(ray, "__version__", "0.0.1")
    with pytest.raises(ExecutorError, match="Ray version mismatch") as info:
        _executor(cluster)
    assert "\n" not in str(info.value) and ray.is_initialized() is False


def test_without_ray_installed_it_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = CliRunner().invoke(cli.app, ["search", "--out", str(tmp_path / "r"), "--executor", "ray"])
    assert res.exit_code == 2 and "pip install 'trainfree[ray]'" in res.output
    assert not (tmp_path / "r").exists()
