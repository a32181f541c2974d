"""``--backend llamacpp``: generation measured in llama.cpp from a GGUF file (pp, tg, memory at
the context), its settings, cache keys and cost-model weights, a search on it, and its bad
input. Tiny models and contexts; the figures of real models: benchmarks/bench_llamacpp.py."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

pytest.importorskip("transformers")

from typer.testing import CliRunner

from llama_toys import GEN, SEARCH_VALUES, TINY, generation_search
from trainfree import cli
from trainfree.errors import ConfigError
from trainfree.gguf.layout import weights_bytes
from trainfree.hardware import HardwareSettings, MeasurementCache
from trainfree.hardware.costmodel import weights_mb
from trainfree.hardware.measurement import Measurement
from trainfree.hardware.profiler import profile
from trainfree.search.settings import SearchSettings
from trainfree.spaces import get_space

CPP = {**GEN, "backend": "llamacpp"}
MB = 2**20


@pytest.fixture(scope="module")
def tiny():
    space = get_space("llama")
    return space, space.config_from_dict(TINY)


def needs_llamacpp():
    return pytest.importorskip("llama_cpp")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({**CPP, "mode": "forward"}, "mode"),
        ({**CPP, "quantize": "int8"}, "quantize"),
        ({**GEN, "quantize": "q4_k_m"}, "quantize"),
        ({**GEN, "backend": "onnx", "quantize": "f16"}, "quantize"),
        ({**CPP, "device": "cuda"}, "device"),
        ({**CPP, "batch_size": 2}, "batch_size"),
    ],
)
def test_bad_llamacpp_settings(kwargs, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        HardwareSettings(**kwargs)


def test_each_quantization_is_kept_apart(tiny, tmp_path):
    space, cfg = tiny
    cache = MeasurementCache(tmp_path)
    keys = [
        json.dumps(cache.key("llama", space.config_to_json(cfg), HardwareSettings(**CPP, quantize=q)))
        for q in ("none", "f16", "q8_0", "q4_k_m")
    ]
    torch_key = cache.key("llama", space.config_to_json(cfg), HardwareSettings(**GEN))
    assert len(set(keys)) == 4 and "runtime" not in torch_key  # torch keys are as they were
    assert all('"runtime"' in k for k in keys)
    for q, fmt in (("none", "f32"), ("f16", "f16"), ("q4_k_m", "q4_k_m")):
        hw = HardwareSettings(**CPP, quantize=q)
        assert weights_mb(space, cfg, hw) == weights_bytes(cfg, fmt) / MB
    assert HardwareSettings(**CPP).kv_bytes == 2 and HardwareSettings(**GEN).kv_bytes == 4


def test_gpt2_is_refused_before_the_search_with_the_reason():
    with pytest.raises(ConfigError, match=r"llama\.cpp's GPT-2 graph"):
        SearchSettings(space="gpt2", objectives=["decode"], hardware=HardwareSettings(**CPP)).validate()


def test_llamacpp_measurement_carries_its_figures(tiny):
    needs_llamacpp()
    space, cfg = tiny
    for quant in ("f16", "q4_k_m"):
        m = profile(space, cfg, HardwareSettings(**CPP, quantize=quant), isolate=False)
        assert m.ok, m.error
        for name in ("prefill_ms", "decode_ms_per_token", "memory_mb", "activation_mb"):
            assert math.isfinite(getattr(m, name)) and getattr(m, name) > 0, name
        assert m.latency_ms == m.decode_ms_per_token and m.memory_mb == m.weights_mb + m.activation_mb
        assert m.weights_mb == weights_bytes(cfg, quant) / MB  # llama_model_size of the file
        assert m.kv_cache_mb == space.kv_cache_mb(cfg, 32) / 2  # float16 cache
        assert m.weights_format.startswith(quant) and "llama.cpp" in m.memory_method
        assert Measurement.from_dict(m.as_dict()) == m
    assert "fell back" in m.weights_format  # width 64: Q4_K rows fall back to Q5_0


def test_isolated_measurement_and_a_shape_llamacpp_cannot_quantize(tiny):
    needs_llamacpp()
    space, cfg = tiny
    m = profile(space, cfg, HardwareSettings(**CPP, quantize="q8_0"))  # in a fresh worker
    assert m.ok, m.error
    odd = space.config_from_dict({**TINY, "intermediate_size": 100})
    bad = profile(space, odd, HardwareSettings(**CPP, quantize="q8_0"))
    assert not bad.ok and "intermediate_size = 100 is not a multiple of 32" in bad.error
    assert profile(space, odd, HardwareSettings(**CPP, quantize="f16"), isolate=False).ok


def test_cli_profile_llamacpp(tiny, tmp_path):
    needs_llamacpp()
    space, cfg = tiny
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "llama", "config": TINY}))
    out = tmp_path / "m.json"
    args = ["profile", "--config", str(path), "--backend", "llamacpp", "--quantize", "q8_0", "--no-cache"]
    args += ["--prompt-len", "8", "--context", "32", "--new-tokens", "4", "--repeats", "2"]
    args += ["--json", str(out)]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    assert "decode per token at context 32 (tg)" in res.output and "q8_0" in res.output
    data = json.loads(out.read_text())
    assert data["settings"]["backend"] == "llamacpp" and data["settings"]["mode"] == "generate"
    assert data["decode_ms_per_token"] > 0 and data["kv_cache_mb"] == space.kv_cache_mb(cfg, 32) / 2
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"space": "llama", "config": {**TINY, "intermediate_size": 100}}))
    res = CliRunner().invoke(cli.app, ["profile", "--config", str(odd), *args[3:-2]])
    assert res.exit_code == 2 and "not a multiple of 32" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_search_in_llamacpp_marks_an_unquantizable_model_failed_and_goes_on(tmp_path, monkeypatch):
    needs_llamacpp()
    import pandas as pd

    from trainfree.search import SearchRun
    from trainfree.spaces.llama import LlamaSpace

    monkeypatch.setattr(LlamaSpace, "references", lambda self: {})
    values = {**SEARCH_VALUES, "intermediate_size": [64, 80]}  # 80: no quantized type fits its rows
    s = generation_search(HardwareSettings(**CPP, quantize="q8_0"), space_values=values, budget="8")
    SearchRun.open(tmp_path / "run", s).run()
    evaluated = pd.read_csv(tmp_path / "run" / "evaluated.csv")
    cpp = evaluated[evaluated["feasible"]]
    assert len(cpp) and (cpp["decode_ms_per_token"] > 0).all() and (cpp["prefill_ms"] > 0).all()
    failed = evaluated[~evaluated["feasible"]]
    assert len(failed) and failed["reason"].str.contains("not a multiple of 32").all()
    assert dataclasses.asdict(s.hardware)["quantize"] == "q8_0"


def test_llamacpp_memory_counts_the_kv_cache_it_allocates():
    """The probe starts before llama.cpp creates its context, which allocates and clears the
    whole KV cache: 2048 tokens of context must cost about the analytic cache more than 256
    (it once saw 0.9 MB of an 8 MB cache)."""
    needs_llamacpp()
    space = get_space("llama")
    cfg = space.config_from_dict(
        {**TINY, "num_hidden_layers": 4, "hidden_size": 256, "num_key_value_heads": 4, "head_dim": 64}
    )
    small, large = (
        profile(space, cfg, HardwareSettings(**{**CPP, "prompt_len": 64, "context": c}, quantize="f16"))
        for c in (256, 2048)
    )
    assert small.ok and large.ok, (small.error, large.error)
    kv_growth = large.kv_cache_mb - small.kv_cache_mb  # 7 MB, float16
    assert kv_growth > 6.9
    assert 0.8 * kv_growth < large.memory_mb - small.memory_mb < 1.5 * kv_growth + 2.0


def test_llamacpp_cost_features_follow_the_file_and_the_kernels(tiny):
    """The llama.cpp cost model's inputs: the elements each decode step streams per ggml type of
    the file (the decoder's matrices and the output; an untied token table is read a row at a
    time), flash attention per head size of the space, and each feature named for its target."""
    from trainfree.gguf.layout import tensors
    from trainfree.hardware.backends.llamacpp import cost_features
    from trainfree.hardware.costmodel import features_for

    space, _ = tiny
    hw = HardwareSettings(**{**CPP, "quantize": "q4_k_m"})
    wide = {"hidden_size": 256, "head_dim": 64, "intermediate_size": 512, "tie_word_embeddings": False}
    arch = space.config_from_dict({**TINY, **wide})
    f = cost_features(space, arch, hw)
    assert features_for(space, arch, hw) == f and all(":" in name for name in f)
    matrices = [(n, s, t) for n, s, t in tensors(arch, "q4_k_m") if len(s) == 2 and n != "token_embd.weight"]
    for ggml in {t for _, _, t in matrices}:
        assert f[f"latency_ms:weights_{ggml}"] == sum(s[0] * s[1] for _, s, t in matrices if t == ggml)
    assert f["prefill_ms:head"] == arch.vocab_size * arch.hidden_size
    sizes = sorted(space.values["head_dim"])
    on = [h for h in sizes if f[f"latency_ms:attention_hd{h}"] > 0]
    assert on == [arch.head_dim] and f[f"latency_ms:attention_hd{arch.head_dim}"] == (
        arch.num_hidden_layers * arch.num_attention_heads * hw.context
    )
    # a head size outside the value sets (a reference model's) counts as the nearest one
    odd = dataclasses.replace(arch, head_dim=72)
    assert [h for h in sizes if cost_features(space, odd, hw)[f"latency_ms:attention_hd{h}"] > 0] == [64]
    assert f["activation_mb:kv_cache"] == pytest.approx(
        2 * arch.num_hidden_layers * arch.kv_width * hw.context * 2 / MB
    )
