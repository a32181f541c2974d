"""GGUF files of the llama space, llama.cpp's quantizer, and ``trainfree export --format gguf``.

The files are read back by llama.cpp itself (llama-cpp-python, the ``[llamacpp]`` extra that
scripts/setup.sh installs): its metadata, tensor shapes and sizes, and its logits against the
PyTorch model. Tests that need llama.cpp skip only where llama-cpp-python is not installed.
Tiny models (2 layers, width 64 or 256): a file is written in well under a second."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gguf")

import gguf
from typer.testing import CliRunner

from llama_toys import TINY
from trainfree import cli
from trainfree.errors import TrainfreeError
from trainfree.gguf import writer as gguf_export
from trainfree.gguf.layout import quantization_error, tensors, use_more_bits, weights_bytes
from trainfree.gguf.writer import permute_rotary, write_gguf
from trainfree.spaces import get_space

#: rows a multiple of 256: q4_k_m without fallback; untied, 8 layers (use_more_bits varies)
WIDE = {**TINY, "num_hidden_layers": 8, "hidden_size": 256, "head_dim": 64, "intermediate_size": 512}
WIDE["tie_word_embeddings"] = False
TOKENS = [1, 345, 9876, 23, 31999, 4000, 77, 12345]


def build(values: dict) -> tuple:
    space = get_space("llama")
    cfg = space.config_from_dict(values)
    return space, cfg, space.build(cfg, seed=0).eval()


@pytest.fixture(scope="module")
def tiny():
    return build(TINY)


def needs_llamacpp():
    return pytest.importorskip("llama_cpp")


# ------------------------------------------------------------------ without llama.cpp
def _rope_half(x: torch.Tensor, pos: int, dim: int) -> torch.Tensor:
    """transformers' Llama rotary embedding of one head's vector (rotate_half)."""
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    ang = torch.cat([pos * inv, pos * inv])
    half = torch.cat([-x[dim // 2 :], x[: dim // 2]])
    return x * ang.cos() + half * ang.sin()


def _rope_pairs(x: torch.Tensor, pos: int, dim: int) -> torch.Tensor:
    """llama.cpp's rope (mode 0): adjacent pairs (2i, 2i+1) rotated by theta_i."""
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    a, b = x[0::2], x[1::2]
    out = torch.empty_like(x)
    out[0::2] = a * (pos * inv).cos() - b * (pos * inv).sin()
    out[1::2] = a * (pos * inv).sin() + b * (pos * inv).cos()
    return out


def test_permuted_rows_make_llamacpp_rope_equal_transformers_rope():
    heads, dim, d = 3, 8, 12
    g = torch.Generator().manual_seed(0)
    w = torch.randn(heads * dim, d, generator=g, dtype=torch.float64)
    x = torch.randn(d, generator=g, dtype=torch.float64)
    perm = permute_rotary(torch.arange(heads * dim, dtype=torch.float64)[:, None], heads)[:, 0].long()
    for pos in (0, 1, 5):
        hf = torch.cat([_rope_half(h, pos, dim) for h in (w @ x).split(dim)])
        cpp = torch.cat([_rope_pairs(h, pos, dim) for h in (permute_rotary(w, heads) @ x).split(dim)])
        assert torch.allclose(cpp, hf[perm])  # the same rotation, channels in llama.cpp's order
        if pos:  # without the permutation, llama.cpp's rope is another function
            plain = torch.cat([_rope_pairs(h, pos, dim) for h in (w @ x).split(dim)])
            assert not torch.allclose(plain, hf)


def test_written_file_holds_the_layouts_tensors(tiny, tmp_path):
    _, cfg, model = tiny
    for dtype in ("f32", "f16"):
        info = write_gguf(cfg, model, tmp_path / f"{dtype}.gguf", dtype)
        reader = gguf.GGUFReader(info.path)
        got = [(t.name, tuple(int(n) for n in t.shape), t.tensor_type.name) for t in reader.tensors]
        want = [(n, shape[::-1], t) for n, shape, t in tensors(cfg, dtype)]
        assert sorted(got) == sorted(want)
        data = sum(int(t.n_bytes) for t in reader.tensors)
        assert data == weights_bytes(cfg, dtype)
        assert reader.fields["general.architecture"].contents() == "llama"
        assert reader.fields["llama.attention.head_count_kv"].contents() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f16.gguf", "f32.gguf"]  # no temporaries


def test_q4_k_m_layout_follows_llamacpp_rules():
    cfg = get_space("llama").config_from_dict(WIDE)
    types = {n: t for n, _, t in tensors(cfg, "q4_k_m")}
    assert types["output.weight"] == "Q6_K" and types["token_embd.weight"] == "Q4_K"
    for i in range(8):
        more = "Q6_K" if use_more_bits(i, 8) else "Q4_K"
        assert types[f"blk.{i}.attn_v.weight"] == more and types[f"blk.{i}.ffn_down.weight"] == more
        assert types[f"blk.{i}.attn_q.weight"] == "Q4_K" and types[f"blk.{i}.attn_norm.weight"] == "F32"
    narrow = {n: t for n, _, t in tensors(get_space("llama").config_from_dict(TINY), "q4_k_m")}
    assert narrow["blk.0.attn_q.weight"] == "Q5_0" and narrow["token_embd.weight"] == "Q8_0"


def test_a_width_no_quantized_type_fits_is_refused_and_nothing_is_written(tmp_path):
    values = {**TINY, "intermediate_size": 100}
    _, cfg, model = build(values)
    assert quantization_error(cfg, "f16") is None
    why = quantization_error(cfg, "q8_0")
    assert "intermediate_size = 100 is not a multiple of 32" in why
    with pytest.raises(TrainfreeError, match="not a multiple of 32"):
        write_gguf(cfg, model, tmp_path / "m.gguf", "q4_k_m")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tiny, tmp_path, monkeypatch):
    _, cfg, model = tiny

    def broken(tensor, dtype):
        raise OSError("disk full")

    monkeypatch.setattr(gguf_export, "_as_numpy", broken)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(cfg, model, tmp_path / "m.gguf", "f16")
    assert list(tmp_path.iterdir()) == []


def test_missing_llamacpp_is_one_line_with_the_install_command(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    with pytest.raises(TrainfreeError, match=r"pip install 'trainfree\[llamacpp\]'"):
        gguf_export.require_llamacpp("--backend llamacpp")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "llama", "config": TINY}))
    runner = CliRunner()
    for args in (
        ["profile", "--config", str(path), "--backend", "llamacpp"],
        ["export", "--config", str(path), "--out", str(tmp_path / "o"), "--format", "gguf"],
        ["search", "--space", "llama", "--backend", "llamacpp", "--out", str(tmp_path / "run")],
        ["calibrate", "--space", "llama", "--backend", "llamacpp", "--no-cache"],
    ):
        res = runner.invoke(cli.app, args)
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert "pip install 'trainfree[llamacpp]'" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


# ------------------------------------------------------------------ read back by llama.cpp
def test_llamacpp_reads_the_metadata_and_shapes(tiny, tmp_path):
    needs_llamacpp()
    from trainfree.export.gguf_check import check_metadata, read_back

    _, cfg, model = tiny
    info = write_gguf(cfg, model, tmp_path / "m.gguf", "f16")
    meta, shapes = read_back(info.path)
    assert meta["llama.block_count"] == "2" and meta["llama.embedding_length"] == "64"
    assert meta["llama.attention.head_count"] == "4" and meta["n_vocab"] == "32000"
    assert shapes["blk.1.attn_k.weight"] == (64, 32) and "output.weight" not in shapes  # tied
    check_metadata(info.path, cfg)
    other = get_space("llama").config_from_dict({**TINY, "num_key_value_heads": 4})
    with pytest.raises(TrainfreeError, match="head_count_kv = 2, expected 4"):
        check_metadata(info.path, other)


def _max_diff(cfg, model, path) -> tuple[float, float]:
    from trainfree.export.gguf_check import llamacpp_logits, torch_logits

    ref = torch_logits(model, TOKENS)
    return float((llamacpp_logits(path, TOKENS) - ref).abs().max()), float(ref.abs().max())


@pytest.mark.parametrize("values", [TINY, WIDE], ids=["tied-64", "untied-256"])
def test_llamacpp_logits_match_pytorch(values, tmp_path):
    needs_llamacpp()
    from trainfree.export.gguf_check import F16_RTOL

    _, cfg, model = build(values)
    f32 = write_gguf(cfg, model, tmp_path / "f32.gguf", "f32")
    f16 = write_gguf(cfg, model, tmp_path / "f16.gguf", "f16")
    d32, scale = _max_diff(cfg, model, f32.path)
    d16, _ = _max_diff(cfg, model, f16.path)
    # measured 2.3e-4 / 5.2e-4 (f32) and 4.6e-4 / 9.3e-4 (f16) of the logit scale (64 / 256 wide)
    assert d32 <= 2e-3 * scale  # float32 weights; the KV cache is float16 in llama.cpp
    assert d16 <= F16_RTOL * scale


def test_without_the_rotary_permutation_the_logits_differ(tmp_path, monkeypatch):
    """Weights of std 0.1 (not 0.02) make attention sharp enough for positions to matter:
    measured 8.7e-4 of the logit scale with the permutation, 0.41 without."""
    needs_llamacpp()
    _, cfg, model = build({**TINY, "initializer_range": 0.1})
    right = write_gguf(cfg, model, tmp_path / "right.gguf", "f32")
    diff, scale = _max_diff(cfg, model, right.path)
    assert diff <= 2e-3 * scale
    monkeypatch.setattr(gguf_export, "permute_rotary", lambda w, heads: w)
    wrong = write_gguf(cfg, model, tmp_path / "wrong.gguf", "f32")
    diff, scale = _max_diff(cfg, model, wrong.path)
    assert diff > 0.1 * scale


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_quantized_files_load_generate_and_have_the_layouts_size(quant, tmp_path):
    needs_llamacpp()
    from trainfree.export.gguf_check import generate
    from trainfree.gguf.session import session

    for values in (TINY, WIDE):
        _, cfg, model = build(values)
        info = write_gguf(cfg, model, tmp_path / f"{quant}.gguf", quant)
        want = {}
        for _, _, t in tensors(cfg, quant):
            want[t] = want.get(t, 0) + 1
        assert info.tensor_types == want
        with session(info.path, 16, 16, 1) as s:
            assert s.weights_bytes == weights_bytes(cfg, quant)
        tokens = generate(info.path, TOKENS[:4], 4)
        assert len(tokens) == 4 and all(0 <= t < cfg.vocab_size for t in tokens)
        diff, scale = _max_diff(cfg, model, info.path)
        assert math.isfinite(diff) and diff < scale  # near the model, not equal to it
    assert info.fallback == 0  # WIDE: rows of 256 (hidden, heads x head_dim) and 512 need none
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{quant}.gguf"]


def test_q4_k_m_of_a_narrow_model_falls_back_as_llamacpp_says(tiny, tmp_path):
    needs_llamacpp()
    _, cfg, model = tiny
    info = write_gguf(cfg, model, tmp_path / "m.gguf", "q4_k_m")
    assert info.fallback > 0 and "Q5_0" in info.tensor_types and "Q4_K" not in info.tensor_types
    assert "fell back" in info.summary()


# ------------------------------------------------------------------ trainfree export
def test_cli_export_gguf_end_to_end(tmp_path):
    needs_llamacpp()
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "llama", "config": TINY}))
    out = tmp_path / "q4"
    args = ["export", "--config", str(path), "--out", str(out), "--format", "gguf", "--quantize", "q4_k_m"]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model-q4_k_m.gguf", "trainfree.json"]
    record = json.loads((out / "trainfree.json").read_text())["gguf"]
    assert record["quantize"] == "q4_k_m" and len(record["generated"]) == 8
    assert record["f16_max_abs_diff"] <= 3e-2 * record["logit_scale"]
    assert "f16 logits within" in " ".join(res.output.split())  # rich wraps long lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "q4"]  # no temporaries


def test_cli_export_gguf_bad_input_is_one_line_and_writes_nothing(tmp_path):
    import numpy as np

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "llama", "config": TINY}))
    gpt2 = get_space("gpt2")
    other = tmp_path / "g.json"
    sample = gpt2.config_to_dict(gpt2.sample(np.random.default_rng(0)))
    other.write_text(json.dumps({"space": "gpt2", "config": sample}))
    for args, needle in (
        (["--config", str(path), "--format", "gguf", "--quantize", "q3_k"], "'q3_k': expected one of f32"),
        (["--config", str(path), "--quantize", "q8_0"], "--quantize q8_0: applies to --format gguf only"),
        (["--config", str(other), "--format", "gguf"], "space 'gpt2' has no GGUF export"),
    ):
        res = CliRunner().invoke(cli.app, ["export", "--out", str(tmp_path / "bad"), *args])
        assert res.exit_code == 2 and needle in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "g.json"]
