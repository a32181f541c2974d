"""A hardware backend is one declaration: a fake one, registered here and nowhere else, is
validated, measured through the normal API, keys the measurement cache by its runtime and
tells the cost model its weights' size; the profiler never names a backend."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainfree import get_space
from trainfree.errors import ConfigError
from trainfree.hardware import (
    BACKENDS,
    Backend,
    HardwareSettings,
    Measurement,
    MeasurementCache,
    backend_names,
    costmodel,
    profile,
    register_backend,
)
from trainfree.hardware.wording import what_is_timed


@pytest.fixture
def fake_backend():
    """A backend that measures nothing: ``ok`` with a latency proportional to the parameters."""

    @register_backend("fake")
    class FakeBackend(Backend):
        quantize = ("none", "int4")
        quantize_note = "int4: fake"
        modes = ("forward",)
        kv_bytes = 1
        runtime = ("numpy",)  # any installed distribution: its version keys the cache

        def measure(self, space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float):
            params = space.param_counts(config).total
            return Measurement(ok=True, latency_ms=params / 1e6, weights_mb=1.5, memory_mb=2.0)

        def weights_mb(self, config: Any, settings: HardwareSettings) -> float | None:
            return 1.5 if settings.quantize == "int4" else None

    yield FakeBackend
    BACKENDS.unregister("fake")  # the registry holds it for this test only


@pytest.fixture(scope="module")
def tiny():
    space = get_space("gpt2", n_layer=[2], d_model=[64], d_inner=[128], n_head=[2], d_embed=[-1], div_val=[1])
    return space, space.sample(np.random.default_rng(0))


def test_a_fake_backend_is_validated_by_its_declaration(fake_backend):
    assert backend_names()[:3] == ("torch", "onnx", "llamacpp") and "fake" in backend_names()
    assert HardwareSettings(backend="fake", quantize="int4").kv_bytes == 1
    with pytest.raises(ConfigError, match="expected cpu \\(the fake backend runs on the CPU\\)"):
        HardwareSettings(backend="fake", device="cuda")
    with pytest.raises(ConfigError, match="expected forward with backend fake"):
        HardwareSettings(backend="fake", mode="generate")
    with pytest.raises(ConfigError, match=r"expected none or int4 with fake-cpu .*int4: fake"):
        HardwareSettings(backend="fake", quantize="int8")
    with pytest.raises(ConfigError, match="'int4'; expected none or int8 with torch-cpu"):
        HardwareSettings(quantize="int4")


def test_a_fake_backend_measures_through_the_normal_api(fake_backend, tiny):
    space, cfg = tiny
    m = profile(space, cfg, HardwareSettings(backend="fake"), isolate=False)
    assert m.ok and m.latency_ms == pytest.approx(space.param_counts(cfg).total / 1e6)
    assert m.weights_mb == 1.5 and math.isnan(m.prefill_ms)
    assert "fake on the CPU, 1 thread" in what_is_timed(HardwareSettings(backend="fake").as_dict())


def test_a_fake_backend_keys_the_cache_and_sizes_the_weights(fake_backend, tiny, tmp_path: Path):
    space, cfg = tiny
    cache = MeasurementCache(tmp_path)
    key = cache.key(space.name, space.config_to_json(cfg), HardwareSettings(backend="fake"))
    assert key["runtime"] == np.__version__
    assert "runtime" not in cache.key(space.name, space.config_to_json(cfg), HardwareSettings())
    int4 = HardwareSettings(backend="fake", quantize="int4")
    assert costmodel.weights_mb(space, cfg, int4) == 1.5
    assert costmodel.weights_mb(space, cfg, HardwareSettings(backend="fake")) == pytest.approx(
        space.param_counts(cfg).total * 4 / 2**20
    )
