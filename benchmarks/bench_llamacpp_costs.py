"""What llama.cpp's costs follow, and how far one measurement of them can be trusted here.

    python benchmarks/bench_llamacpp_costs.py attention [--flash auto|on|off]
        decode time per token of 12 models that differ only in attention (heads, KV heads,
        head size), at C = 128 and 512: the per-key costs behind the cost model's attention
        features, per head size (docs/llamacpp.md, "The cost model")
    python benchmarks/bench_llamacpp_costs.py reload [--loads 8] [--seconds 0]
        one GGUF file loaded again and again, its decode time each time: the machine's noise
    python benchmarks/bench_llamacpp_costs.py heldout TRAIN.json TEST.json [TEST2.json ...]
        a cost model fitted on one calibration's cached rows (``$TRAINFREE_CACHE/costmodels``)
        predicting another's, and how the two measurements of configs in both agree

All on one thread, q4_k_m, P 128, C 512, N 16 unless said; run it with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from trainfree.gguf.session import Session
from trainfree.gguf.writer import write_gguf
from trainfree.hardware import costmodel
from trainfree.hardware.calibration import current_rows
from trainfree.hardware.settings import HardwareSettings
from trainfree.hardware.timing import reference_ms
from trainfree.spaces import get_space

P, C, N = 128, 512, 16
BASE = {"num_hidden_layers": 8, "hidden_size": 256, "intermediate_size": 256, "tokenizer": "llama2"}
RELOADED = {
    "num_hidden_layers": 16,
    "hidden_size": 576,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "intermediate_size": 512,
    "tie_word_embeddings": False,
    "tokenizer": "smollm",
}


def _written(space, values: dict, folder: Path) -> Path:
    arch = space.config_from_dict({"tie_word_embeddings": True, "max_position_embeddings": 2048, **values})
    path = folder / "model.gguf"
    write_gguf(arch, space.build(arch, seed=0).eval(), path, "q4_k_m", threads=1)
    return path


def decode_ms(path: Path, context: int, seconds: float = 0.0) -> tuple[float, float, float]:
    """Median, least and most on-CPU ms per token of ``N``-token decodes at ``context``
    (five runs, or more until ``seconds`` have passed)."""
    tokens = [int(t) for t in np.random.default_rng(0).integers(300, 30000, context)]
    s = Session(path, context, P, 1)
    try:
        s.decode(tokens[:1])
        s.keep(0)
        for start in range(0, context - N, P):
            s.decode(tokens[start : min(start + P, context - N)])
        runs, t_start = [], time.perf_counter()
        while len(runs) < 5 or time.perf_counter() - t_start < seconds:
            s.keep(context - N)
            c0 = time.process_time()
            for t in tokens[context - N :]:
                s.decode([t])
            runs.append((time.process_time() - c0) / N * 1000.0)
    finally:
        s.close()
    return float(np.median(runs)), min(runs), max(runs)


def attention_cmd(args: argparse.Namespace) -> None:
    import llama_cpp

    flash = {"on": "ENABLED", "off": "DISABLED", "auto": "AUTO"}[args.flash]
    llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO = getattr(llama_cpp, f"LLAMA_FLASH_ATTN_TYPE_{flash}")
    space = get_space("llama")
    print(f"flash attention {args.flash}; decode ms per token at C = 128 and {C}")
    print("| head size | heads | KV heads | C 128 | C 512 |")
    print("|---|---|---|---|---|")
    grew = {}  # (size, heads, kv) -> ms added by the extra keys
    for size in (32, 64, 128):
        for heads in (8, 32):
            for kv in (1, 8):
                values = {**BASE, "head_dim": size, "num_attention_heads": heads, "num_key_value_heads": kv}
                with tempfile.TemporaryDirectory() as tmp:
                    path = _written(space, values, Path(tmp))
                    short, long = decode_ms(path, 128)[0], decode_ms(path, C)[0]
                grew[size, heads, kv] = long - short
                print(f"| {size} | {heads} | {kv} | {short:.2f} | {long:.2f} |", flush=True)
    keys = BASE["num_hidden_layers"] * (C - 128)  # extra keys, all layers
    for size in (32, 64, 128):
        per_head = (grew[size, 32, 1] - grew[size, 8, 1]) / (24 * keys) * 1e6
        per_kv = (grew[size, 8, 8] - grew[size, 8, 1]) / (7 * keys) * 1e6
        print(
            f"head size {size}: {per_head:.0f} ns per query head and key, {per_kv:.0f} ns per KV head and key"
        )


def reload_cmd(args: argparse.Namespace) -> None:
    space = get_space("llama")
    with tempfile.TemporaryDirectory() as tmp:
        path = _written(space, RELOADED, Path(tmp))
        for k in range(args.loads):
            median, low, high = decode_ms(path, C, args.seconds)
            ref = reference_ms()
            print(f"load {k}: {median:.2f} ms per token (runs {low:.2f}-{high:.2f}); reference {ref:.3f} ms")


def _rows(path: str) -> tuple[list[dict], dict[str, dict]]:
    """A calibration's cached rows, with today's features (as the search would fit them)."""
    data = json.loads(Path(path).read_text())
    hw = HardwareSettings(**data["key"]["hardware"])
    space = get_space(data["key"]["space"], **data["key"]["values"])
    rows = current_rows(space, hw, data["rows"])
    return rows, {r["key"]: r for r in rows}


def _cell(a: dict[str, float]) -> str:
    return f"{a['spearman']:.3f} / {100 * a['median_ape']:.1f}% / {100 * a['within_10pct']:.0f}%"


def _line(label: str, predicted: dict[str, np.ndarray], rows: list[dict]) -> str:
    cells = []
    for target, field in (("latency_ms", "latency_ms"), ("prefill_ms", "prefill_ms"), ("memory_mb", None)):
        measured = np.array(
            [r["weights_mb"] + r["activation_mb"] if field is None else r[field] for r in rows]
        )
        a = costmodel.accuracy(predicted[target], measured)
        cells.append(_cell(a))
    return f"| {label} | " + " | ".join(cells) + " |"


def heldout_cmd(args: argparse.Namespace) -> None:
    train, _ = _rows(args.train)
    model = costmodel.fit_cost_model(train)
    print("Spearman / median error / within 10%")
    print("| set | decode | prefill | memory |")
    print("|---|---|---|---|")
    held = model.accuracy
    print(
        f"| 5-fold on {len(train)} | "
        + " | ".join(_cell(held[t]) for t in ("latency_ms", "prefill_ms", "memory_mb"))
        + " |"
    )
    tests = [_rows(p) for p in args.test]
    for path, (rows, _) in zip(args.test, tests, strict=True):
        pred = model.predict(
            [r["features"] for r in rows], [r["weights_mb"] for r in rows], [r["genes"] for r in rows]
        )
        print(_line(f"{Path(path).parent.parent.name}: {len(rows)}", pred, rows))
    if len(tests) == 2:  # one measurement of each common config as the other's prediction
        common = sorted(set(tests[0][1]) & set(tests[1][1]))
        first = [tests[0][1][k] for k in common]
        as_predicted = {
            "latency_ms": np.array([r["latency_ms"] for r in first]),
            "prefill_ms": np.array([r["prefill_ms"] for r in first]),
            "memory_mb": np.array([r["weights_mb"] + r["activation_mb"] for r in first]),
        }
        print(
            _line(
                f"first measurement as the second's prediction: {len(common)}",
                as_predicted,
                [tests[1][1][k] for k in common],
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("attention")
    p.add_argument("--flash", choices=("auto", "on", "off"), default="auto")
    p = sub.add_parser("reload")
    p.add_argument("--loads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=0.0, help="time each load's runs for at least this long")
    p = sub.add_parser("heldout")
    p.add_argument("train")
    p.add_argument("test", nargs="+")
    args = parser.parse_args()
    {"attention": attention_cmd, "reload": reload_cmd, "heldout": heldout_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
