"""Hardware measurement: settings validation, the CPU peak-memory probe, isolated measurements
of real models (PyTorch and ONNX Runtime), failure reporting and the on-disk cache."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trainfree import get_space
from trainfree.errors import ConfigError
from trainfree.hardware import HardwareSettings, Measurement, MeasurementCache, profile, profile_cached
from trainfree.hardware.measurement_cache import FORMAT
from trainfree.hardware.memory_probes import cpu_peak_probe


@pytest.fixture(scope="module")
def tiny():
    space = get_space("gpt2", n_layer=[2], d_model=[64], d_inner=[128], n_head=[2], d_embed=[-1], div_val=[1])
    return space, space.sample(np.random.default_rng(0))


FAST = dict(seq_len=32, warmup=1, repeats=3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"backend": "tensorrt"}, "backend"),
        ({"device": "tpu"}, "device"),
        ({"backend": "onnx", "device": "cuda"}, "device"),
        ({"seq_len": 0}, "seq_len"),
        ({"repeats": 0}, "repeats"),
        ({"threads": 1.5}, "threads"),
    ],
)
def test_settings_are_validated(kwargs, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        HardwareSettings(**kwargs)


def test_cpu_probe_counts_a_freed_allocation_at_its_peak():
    method, start, stop = cpu_peak_probe()
    start()
    x = torch.ones(64 * 1024 * 1024 // 4)  # 64 MB, touched, then freed before stop()
    del x
    peak = stop()
    if method == "vmhwm":
        assert 60 <= peak <= 80
    else:  # lifetime peak: only a lower bound is guaranteed
        assert peak >= 0


_KEEPS_FREED = """
import sys, torch
from trainfree.hardware.memory_probes import _status_kb, steady_allocator
if sys.argv[1] == "steady":
    steady_allocator()
x = torch.ones(64 * 1024 * 1024 // 4)  # 64 MB, touched
before = _status_kb("VmRSS")
del x
print((before - _status_kb("VmRSS")) / 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("mode", ["default", "steady"])
def test_steady_allocator_keeps_what_a_run_frees(mode):
    """glibc hands a freed 64 MB block back to the system (the next run page-faults it in
    again); after steady_allocator it keeps it, as the timed runs need."""
    cmd = [sys.executable, "-c", _KEEPS_FREED, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    returned_mb = float(out.stdout.split()[-1])
    if mode == "default":
        assert returned_mb >= 60
    else:
        assert returned_mb <= 4


def test_inference_of_a_language_model_includes_the_output_layer(tiny):
    space, cfg = tiny
    model = space.build(cfg).eval()
    with torch.inference_mode():
        out = space.inference(model, space.example_input(cfg, 2, 8))
    assert out.shape == (2, 8, cfg.n_token)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 8), atol=1e-4)


def test_isolated_measurement_of_a_real_model(tiny):
    space, cfg = tiny
    before = time.time()
    m = profile(space, cfg, HardwareSettings(**FAST))
    assert m.ok, m.error
    assert 0 < m.latency_min_ms <= m.latency_p25_ms <= m.latency_ms <= m.latency_p75_ms
    assert before <= m.measured_at <= time.time()  # when: the cost model levels sessions by it
    assert len(m.runs_ms) == 3
    # the output alone is 32 x 50264 float32 log-probabilities (6.1 MB)
    assert m.memory_mb > 5
    assert m.weights_mb == pytest.approx(space.param_counts(cfg).total * 4 / 2**20, rel=1e-6)
    assert m.memory_method in ("vmhwm", "ru_maxrss")


def test_peak_memory_grows_with_the_input(tiny):
    space, cfg = tiny
    short = profile(space, cfg, HardwareSettings(batch_size=1, seq_len=16, warmup=0, repeats=1))
    long = profile(space, cfg, HardwareSettings(batch_size=4, seq_len=64, warmup=0, repeats=1))
    assert short.ok and long.ok
    # 16x the tokens: the log-probabilities alone grow from 3 MB to 49 MB
    assert long.memory_mb > short.memory_mb + 30


def test_onnx_runtime_backend(tiny):
    space, cfg = tiny
    m = profile(space, cfg, HardwareSettings(backend="onnx", **FAST))
    assert m.ok, m.error
    assert m.latency_ms > 0 and m.memory_mb > 0


def test_failures_are_reported_not_raised(tiny):
    space, cfg = tiny
    too_long = profile(space, cfg, HardwareSettings(seq_len=cfg.tgt_len + 1, repeats=1))
    assert not too_long.ok and "seq_len" in too_long.error
    slow = profile(space, cfg, HardwareSettings(timeout_s=0.001, **FAST))
    assert not slow.ok and "timed out" in slow.error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_an_infeasible_measurement(tiny):
    space, cfg = tiny
    m = profile(space, cfg, HardwareSettings(device="cuda", **FAST))
    assert not m.ok and "CUDA" in m.error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_measurement(tiny):
    space, cfg = tiny
    m = profile(space, cfg, HardwareSettings(device="cuda", **FAST))
    assert m.ok and m.memory_method == "cuda-allocator" and m.memory_mb > 5


def test_cache_round_trip_and_distrust(tiny, tmp_path):
    space, cfg = tiny
    settings = HardwareSettings(**FAST)
    cache = MeasurementCache(tmp_path, machine={"cpu": "test"})
    first, cached = profile_cached(space, cfg, settings, cache)
    assert first.ok and not cached
    again, cached = profile_cached(space, cfg, settings, cache)
    assert cached and again.latency_ms == first.latency_ms
    assert again.measured_at == first.measured_at  # a cached figure keeps the time it was taken
    older = {k: v for k, v in first.as_dict().items() if k != "measured_at"}  # cached before it was kept
    assert Measurement.from_dict(older).measured_at is None
    k = cache.key(space.name, space.config_to_json(cfg), settings)
    cache._path(k).write_text(json.dumps({"format": FORMAT, "key": k, "measurement": older}))
    assert cache.get(k).measured_at == pytest.approx(cache._path(k).stat().st_mtime)  # when written
    with pytest.raises(ValueError, match="measured_at"):
        Measurement.from_dict({**first.as_dict(), "measured_at": "yesterday"})

    key = cache.key(space.name, space.config_to_json(cfg), settings)
    path = cache._path(key)
    # another setting or another machine is another entry
    assert cache.get(cache.key(space.name, space.config_to_json(cfg), HardwareSettings(seq_len=16))) is None
    assert (
        MeasurementCache(tmp_path, machine={"cpu": "other"}).get({**key, "machine": {"cpu": "other"}}) is None
    )
    # a truncated file and a file whose stored key differs are ignored
    path.write_text(path.read_text()[:40])
    assert cache.get(key) is None
    entry = {
        "format": "trainfree-hardware-cache/1",
        "key": {**key, "seed": 99},
        "measurement": first.as_dict(),
    }
    path.write_text(json.dumps(entry))
    assert cache.get(key) is None
    # failures are not cached
    cache.put(key, Measurement(ok=False, error="busy"))
    assert cache.get(key) is None
