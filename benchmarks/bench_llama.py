"""Figures of the llama space and of generation-time costs (docs/llama.md). Not timed tests.

    python benchmarks/bench_llama.py references [--names SmolLM2-135M ...] [--json F]
    python benchmarks/bench_llama.py gpt2-cache [--json F]
    python benchmarks/bench_llama.py accuracy -n 40 --held 20 [--quantize int8] [--json F]
    python benchmarks/bench_llama.py search --out DIR [--budget 10m] [--json F]
    python benchmarks/bench_llama.py import-cost

``references``: each reference model measured generating (prompt P=128, context C=512,
N=16 tokens per decode run; the library's defaults) on one thread and on all threads, with
float32 and int8 weights, each in a fresh worker: prefill ms, decode ms/token (median and
quartiles of the timed runs), peak memory at C, the KV cache.

``gpt2-cache``: the gpt2 builder with its KV cache against the builder before it had one
(the module as committed at ec79878, loaded from git): log-probabilities of the same
weights on the same batch (max abs difference, without and with the cache), and the time
per generated token at context 192 with the cache against a full forward pass per token
(how an exported gpt2 generated before).

``accuracy``: the generation cost model on llama, fitted on ``-n`` calibration models
(Latin hypercube, seed 0) and judged on ``--held`` others (random, seed 1): Spearman and
the share within 10% for decode, prefill and memory, held out, beside the 5-fold figures.

``search``: ``trainfree search --space llama --objectives decode,memory`` for ``--budget``;
then evaluations, frontier size (and how many measured) and, per reference model, the
frontier model with the largest decoder_params at no more decode time and memory.

``import-cost``: what transformers costs as a dependency: the wall time of ``import
trainfree`` with and without importing transformers' Llama, and the size on disk of
transformers and the packages it alone pulls in.

The machine this runs on is shared: every figure says the load it was taken under
(``others_running``: other programs running, mean over the timed runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainfree import get_space
from trainfree.hardware import HardwareSettings, profile

ROOT = Path(__file__).resolve().parents[1]
GEN = {"mode": "generate", "prompt_len": 128, "context": 512, "new_tokens": 16, "warmup": 1}


def _dump(path: str | None, data: object) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, default=float))
        print(f"wrote {path}")


# ------------------------------------------------------------------ references
def references(args: argparse.Namespace) -> None:
    space = get_space("llama")
    refs = space.references()
    names = args.names or list(refs)
    rows = []
    print(
        f"{'model':16s} {'thr':>3s} {'w':>4s} {'prefill ms (p25-p75)':>24s} "
        f"{'decode ms/tok (p25-p75)':>26s} {'memory MB':>10s} {'KV MB':>6s} {'load':>5s}"
    )
    for name in names:
        for threads in (1, os.cpu_count() or 1):
            for quantize in ("none", "int8"):
                hw = HardwareSettings(**GEN, threads=threads, repeats=5, max_repeats=15, quantize=quantize)
                m = profile(space, refs[name], hw)
                row = {"name": name, "threads": threads, "weights": quantize, **m.as_dict()}
                rows.append(row)
                if not m.ok:
                    print(f"{name:16s} {threads:3d} {quantize:>4s} failed: {m.error}")
                    continue
                spread = m.prefill_spread * m.prefill_ms
                print(
                    f"{name:16s} {threads:3d} {quantize:>4s} {m.prefill_ms:10.1f} (+-{spread / 2:6.1f}) "
                    f"{m.decode_ms_per_token:10.2f} ({m.latency_p25_ms:6.2f}-{m.latency_p75_ms:6.2f}) "
                    f"{m.memory_mb:10.0f} {m.kv_cache_mb:6.1f} {m.others_running:5.1f}",
                    flush=True,
                )
    _dump(args.json, rows)


# ------------------------------------------------------------------ gpt2 cache
def _old_gpt2_module() -> object:
    """``spaces/gpt2_model.py`` as committed before it had a KV cache."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", "ec79878:src/trainfree/spaces/gpt2_model.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "gpt2_model_ec79878.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("gpt2_model_ec79878", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpt2_cache(args: argparse.Namespace) -> None:
    from trainfree.spaces.base import seeded
    from trainfree.spaces.gpt2_model import KVCache

    torch.set_num_threads(1)
    space = get_space("gpt2")
    old = _old_gpt2_module()
    out = []
    for seed in range(3):
        cfg = space.sample(np.random.default_rng(seed))
        new_model = space.build(cfg, seed=0).eval()
        with torch.device("meta"):
            old_model = old.GPT2LM(cfg)
        old_model.to_empty(device="cpu")
        old_model.tie_weights()
        with seeded(0):
            old_model.reset_parameters()
        old_model.eval()
        ids = space.example_input(cfg, 2, 192, seed=1)
        with torch.no_grad():
            today, before = new_model.log_probs(ids), old_model.log_probs(ids)
            cache = KVCache()
            hidden = torch.cat(
                [new_model(ids[:, :64], cache)]
                + [new_model(ids[:, t : t + 1], cache) for t in range(64, 192)],
                1,
            )
            stepped = new_model.head.log_prob(hidden.reshape(-1, cfg.d_model)).view(2, 192, -1)
        row = {
            "config": space.config_to_dict(cfg),
            "params": space.param_counts(cfg).total,
            "max_abs_diff_no_cache": float((today - before).abs().max()),
            "max_abs_diff_cache": float((stepped - before).abs().max()),
            **_decode_vs_forward(space, cfg, new_model, ids[:1]),
        }
        out.append(row)
        print(
            f"gpt2 {row['params'] / 1e6:6.1f}M: max|diff| without cache {row['max_abs_diff_no_cache']:.1e}, "
            f"with cache {row['max_abs_diff_cache']:.1e}; per token at context 192: cache "
            f"{row['decode_ms']:.2f} ms, full forward {row['forward_ms']:.2f} ms "
            f"({row['forward_ms'] / row['decode_ms']:.1f}x)",
            flush=True,
        )
    _dump(args.json, out)


def _decode_vs_forward(space: object, cfg: object, model: object, ids: torch.Tensor) -> dict[str, float]:
    """Median on-CPU ms of the last of 192 tokens: one cached step vs the whole prefix again."""
    from trainfree.hardware.timing import time_runs
    from trainfree.spaces.gpt2_model import KVCache

    cache = KVCache()
    with torch.inference_mode():
        model(ids[:, :191], cache)

        def step() -> None:
            cache.crop(191)
            model.head.log_prob(model(ids[:, 191:], cache)[:, -1])

        def full() -> None:
            model.head.log_prob(model(ids)[:, -1])

        d = time_runs(step, lambda: None, 2, 7, 21, "cpu").summary()["latency_ms"]
        f = time_runs(full, lambda: None, 2, 7, 21, "cpu").summary()["latency_ms"]
    return {"decode_ms": d, "forward_ms": f}


# ------------------------------------------------------------------ cost model
def accuracy_cmd(args: argparse.Namespace) -> None:
    from trainfree.hardware import MeasurementCache, profile_cached
    from trainfree.hardware.calibration import calibration_sample, measured_row
    from trainfree.hardware.costmodel import accuracy, fit_cost_model

    space = get_space("llama", **json.loads(args.values))
    hw = HardwareSettings(**{**GEN, "warmup": 0}, repeats=3, max_repeats=9, quantize=args.quantize)
    cache = MeasurementCache()
    calib = calibration_sample(space, args.n, 0)
    rng = np.random.default_rng(1)
    held = [space.sample(rng) for _ in range(args.held)]
    rows, held_rows, load = [], [], []
    for group, configs in ((rows, calib), (held_rows, held)):
        for cfg in configs:
            m, _ = profile_cached(space, cfg, hw, cache)
            load.append(m.others_running)
            row = measured_row(space, cfg, hw, m)
            if row is not None:
                group.append(row)
            print(f"measured {len(rows) + len(held_rows)}", end="\r", flush=True)
    model = fit_cost_model(rows)
    pred = model.predict([r["features"] for r in held_rows], [r["weights_mb"] for r in held_rows])
    out = {
        "n": len(rows),
        "held": len(held_rows),
        "form": model.form(),
        "cross_validated": model.accuracy,
        "held_out": {},
    }
    for target, field in (("decode", "latency_ms"), ("prefill", "prefill_ms"), ("memory", "memory_mb")):
        truth = np.array(
            [r[field] if field != "memory_mb" else r["weights_mb"] + r["activation_mb"] for r in held_rows]
        )
        acc = accuracy(pred[field], truth)
        out["held_out"][target] = acc
        print(
            f"{target:8s} held out (n={acc['n']}): Spearman {acc['spearman']:.3f}, within 10% "
            f"{100 * acc['within_10pct']:.0f}%, median |err| {100 * acc['median_ape']:.1f}%"
        )
    out["others_running"] = float(np.nanmean(load)) if load else float("nan")
    print(f"other programs running (mean over the measurements): {out['others_running']:.1f}")
    _dump(args.json, out)


# ------------------------------------------------------------------ search
def search(args: argparse.Namespace) -> None:
    from trainfree.search.references import comparisons

    cmd = [
        sys.executable,
        "-m",
        "trainfree",
        "search",
        "--space",
        "llama",
        "--out",
        args.out,
        "--objectives",
        "decode,memory",
        "--budget",
        args.budget,
    ]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    frontier = json.loads((Path(args.out) / "frontier.json").read_text())
    models = frontier["models"]
    refs = frontier.get("references", [])
    out = {
        "seconds": time.time() - t0,
        "evaluations": frontier["evaluations"],
        "frontier": len(models),
        "measured": sum(m.get("costs") == "measured" for m in models),
        "references": comparisons(refs, models, ["decode", "memory"]),
        "machine_load": frontier.get("machine_load"),
    }
    print(json.dumps(out, indent=1))
    _dump(args.json, out)


# ------------------------------------------------------------------ import cost
def import_cost(args: argparse.Namespace) -> None:
    def wall(code: str) -> float:
        best = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best.append(time.perf_counter() - t0)
        return min(best)

    listing = "import sys, trainfree; trainfree.list_spaces(); assert 'transformers' not in sys.modules"
    base = wall(listing)
    with_llama = wall(listing.split("; assert")[0] + "; from transformers import LlamaForCausalLM")
    site = Path(importlib.util.find_spec("transformers").origin).parents[1]
    sizes = {}
    for pkg in ("transformers", "tokenizers", "huggingface_hub", "safetensors", "regex", "hf_xet"):
        path = site / pkg
        if path.exists():
            sizes[pkg] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    out = {"list_spaces_s": base, "list_spaces_and_import_llama_s": with_llama, "sizes_mb": sizes}
    print(json.dumps(out, indent=1))
    _dump(args.json, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("references")
    p.add_argument("--names", nargs="*")
    p.add_argument("--json")
    p = sub.add_parser("gpt2-cache")
    p.add_argument("--json")
    p = sub.add_parser("accuracy")
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--held", type=int, default=20)
    p.add_argument("--quantize", default="none")
    p.add_argument(
        "--values", default="{}", help="value sets as JSON, e.g. '{\"num_hidden_layers\": [2, 4]}'"
    )
    p.add_argument("--json")
    p = sub.add_parser("search")
    p.add_argument("--out", required=True)
    p.add_argument("--budget", default="10m")
    p.add_argument("--json")
    p = sub.add_parser("import-cost")
    p.add_argument("--json")
    args = parser.parse_args()
    {
        "references": references,
        "gpt2-cache": gpt2_cache,
        "accuracy": accuracy_cmd,
        "search": search,
        "import-cost": import_cost,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
