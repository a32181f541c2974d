"""Figures of the llama.cpp backend and GGUF export (docs/llamacpp.md). Not timed tests.

    python benchmarks/bench_llamacpp.py install --log pip.log | --build [--json F]
    python benchmarks/bench_llamacpp.py export [--names SmolLM2-135M ...] [--config F ...] [--json F]
    python benchmarks/bench_llamacpp.py references [--names ...] [--config F ...] [--quantize ...]
                                                   [--threads 1 N] [--json F]
    python benchmarks/bench_llamacpp.py cross-runtime -n 40 [--values JSON] [--json F]

``install``: the build and install time of the ``[llamacpp]`` extra. ``--log`` reads a log that
``pip install --log FILE 'trainfree[llamacpp]'`` wrote (its lines carry timestamps): the time
from the start of llama-cpp-python's wheel build to its end, and of the whole install.
``--build`` builds the wheel itself (``pip wheel --no-cache-dir --no-deps``) into a temporary
folder and reports its wall time and the CPU time of the build processes.

``export``: per model, the wall time of writing the float16 GGUF file from the built PyTorch
model and of llama.cpp's quantizer to q8_0 and q4_k_m (one thread), with the files' sizes.

``references``: each model (the llama space's reference models by default) measured in
llama.cpp (``--backend llamacpp``: P=128, C=512, N=16) in each weight format, on one thread
and on all threads: pp (prefill ms), tg (decode ms/token), peak memory at C, the weights'
bytes, and the bandwidth tg implies (weights bytes per decode step / its time) beside this
machine's copy bandwidth measured on one thread: is tg bound by memory bandwidth here?

``cross-runtime``: ``-n`` llama configs (Latin hypercube sample of the value sets, seed 0)
measured generating in PyTorch float32 and in llama.cpp at f16, q8_0 and q4_k_m (one thread,
each in a fresh worker); the rank agreement (Spearman) of decode time and of prefill time
between every two runtimes, and, with ``decoder_params`` as the quality axis (maximised) and
decode time (minimised), how many models of one runtime's frontier lie on another's. ONNX
Runtime is not among the runtimes: trainfree's ONNX backend measures a forward pass only (the
llama export has no past key values), so it has no decode time to compare.

The machine this runs on is shared: every measurement carries the load it was taken under
(``others_running``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from trainfree import get_space
from trainfree.hardware import HardwareSettings, profile

GEN = {"mode": "generate", "prompt_len": 128, "context": 512, "new_tokens": 16, "warmup": 1}
QUANTS = ("f16", "q8_0", "q4_k_m")
LLAMACPP = "llama-cpp-python==0.3.36"


def _dump(path: str | None, data: object) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, default=float))
        print(f"wrote {path}")


def _models(args: argparse.Namespace) -> list[tuple[str, object]]:
    """``(name, config)`` of ``--config`` files, else of the ``--names`` reference models."""
    space = get_space("llama")
    if args.config:
        from trainfree.spaces.configfile import load_config

        return [(Path(f).stem, load_config(Path(f), "llama")[1]) for f in args.config]
    refs = space.references()
    return [(n, refs[n]) for n in (args.names or list(refs))]


# ------------------------------------------------------------------ install
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:,\d+)?)")


def _stamp(line: str) -> datetime | None:
    m = _STAMP.match(line)
    return datetime.fromisoformat(m.group(1).replace(",", ".")) if m else None


def install_from_log(path: Path) -> dict[str, float]:
    """Seconds of llama-cpp-python's wheel build and of the whole install, from a pip ``--log``."""
    stamps, start, end = [], None, None
    for line in path.read_text(errors="replace").splitlines():
        t = _stamp(line)
        if t is None:
            continue
        stamps.append(t)
        if "Building wheel for llama-cpp-python" in line and start is None:
            start = t
        if re.search(r"(Created wheel|finished with status 'done').*llama[-_]cpp[-_]python", line) or (
            start and "Building wheel for llama-cpp-python" in line and "finished" in line
        ):
            end = t
    if not stamps:
        raise SystemExit(f"{path}: no timestamped lines; write the log with pip install --log FILE ...")
    out = {"install_s": (stamps[-1] - stamps[0]).total_seconds()}
    if start and end:
        out["build_wheel_s"] = (end - start).total_seconds()
    return out


def install_cmd(args: argparse.Namespace) -> None:
    if args.log:
        out = install_from_log(Path(args.log))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            before = os.times()
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-w", tmp, LLAMACPP]
            subprocess.run(cmd, check=True)
            after = os.times()
            out = {
                "build_wheel_s": time.perf_counter() - t0,
                "build_cpu_s": (after.children_user + after.children_system)
                - (before.children_user + before.children_system),
                "cores": os.cpu_count(),
            }
    print(json.dumps(out, indent=1))
    _dump(args.json, out)


# ------------------------------------------------------------------ export
def export_cmd(args: argparse.Namespace) -> None:
    from trainfree.gguf.writer import quantize_gguf, write_gguf

    space, rows = get_space("llama"), []
    for name, cfg in _models(args):
        model = space.build(cfg, seed=0).eval()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            f16 = write_gguf(cfg, model, Path(tmp) / "f16.gguf", "f16")
            row = {"name": name, "params": space.param_counts(cfg).total, "f16_s": time.perf_counter() - t0}
            row["f16_bytes"] = f16.bytes
            for quant in ("q8_0", "q4_k_m"):
                t0 = time.perf_counter()
                q = quantize_gguf(f16.path, Path(tmp) / f"{quant}.gguf", quant, threads=1)
                row[f"{quant}_s"], row[f"{quant}_bytes"] = time.perf_counter() - t0, q.bytes
        del model
        rows.append(row)
        sizes = " / ".join(f"{row[f'{q}_bytes'] / 2**20:.0f}" for q in QUANTS)
        print(
            f"{name:16s} {row['params'] / 1e6:8.1f}M  f16 {row['f16_s']:6.1f} s  "
            f"q8_0 {row['q8_0_s']:6.1f} s  q4_k_m {row['q4_k_m_s']:6.1f} s  ({sizes} MB)"
        )
    _dump(args.json, rows)


# ------------------------------------------------------------------ references
def copy_bandwidth_gbs(mb: int = 256) -> float:
    """This machine's memory bandwidth on one thread: bytes read and written per second by a
    copy of ``mb`` MB (the best of five)."""
    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def _gen(args: argparse.Namespace) -> dict:
    return {**GEN, "prompt_len": args.prompt_len, "context": args.context, "new_tokens": args.new_tokens}


def references_cmd(args: argparse.Namespace) -> None:
    space, rows = get_space("llama"), []
    bandwidth = copy_bandwidth_gbs()
    print(f"copy bandwidth, one thread: {bandwidth:.1f} GB/s")
    head = f"{'model':16s} {'fmt':7s} {'thr':>3s} {'pp ms':>9s} {'tg ms/tok':>10s} {'mem MB':>8s}"
    print(head + f" {'weights MB':>10s} {'tg GB/s':>8s} {'load':>5s}")
    for name, cfg in _models(args):
        for quant in args.quantize:
            for threads in args.threads:
                hw = HardwareSettings(
                    **_gen(args),
                    backend="llamacpp",
                    quantize=quant,
                    threads=threads,
                    repeats=args.repeats,
                    max_repeats=3 * args.repeats,
                )
                m = profile(space, cfg, hw)
                row = {"name": name, "quantize": quant, "threads": threads, **m.as_dict()}
                if m.ok:
                    row["tg_gbs"] = m.weights_mb * 2**20 / (m.decode_ms_per_token / 1e3) / 1e9
                    print(
                        f"{name:16s} {quant:7s} {threads:3d} {m.prefill_ms:9.1f} "
                        f"{m.decode_ms_per_token:10.2f} {m.memory_mb:8.0f} {m.weights_mb:10.0f} "
                        f"{row['tg_gbs']:8.1f} {m.others_running:5.1f}"
                    )
                else:
                    print(f"{name:16s} {quant:7s} {threads:3d} failed: {m.error}")
                rows.append(row)
    _dump(args.json, {"copy_bandwidth_gbs": bandwidth, "rows": rows})


# ------------------------------------------------------------------ across runtimes
RUNTIMES = {
    "torch-f32": {"backend": "torch", "quantize": "none"},
    **{f"llamacpp-{q}": {"backend": "llamacpp", "quantize": q} for q in QUANTS},
}


def front(quality: np.ndarray, cost: np.ndarray) -> set[int]:
    """Indices on the frontier of ``quality`` (maximised) against ``cost`` (minimised)."""
    ok = np.flatnonzero(np.isfinite(cost))
    return {
        int(i)
        for i in ok
        if not any(
            quality[j] >= quality[i] and cost[j] <= cost[i] and (quality[j] > quality[i] or cost[j] < cost[i])
            for j in ok
        )
    }


def compare(table: dict[str, dict[str, np.ndarray]], quality: np.ndarray) -> dict:
    """Spearman of decode and prefill between runtimes; frontier overlap on decode."""
    names, out = list(table), {"spearman_decode": {}, "spearman_prefill": {}, "frontier": {}, "overlap": {}}
    fronts = {n: front(quality, table[n]["decode"]) for n in names}
    out["frontier"] = {n: sorted(f) for n, f in fronts.items()}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for field in ("decode", "prefill"):
                x, y = table[a][field], table[b][field]
                ok = np.isfinite(x) & np.isfinite(y)
                rho = float(spearmanr(x[ok], y[ok])[0]) if ok.sum() > 2 else float("nan")
                out[f"spearman_{field}"][f"{a} vs {b}"] = rho
        for b in names:
            if a != b:
                out["overlap"][f"{a} on {b}"] = f"{len(fronts[a] & fronts[b])} of {len(fronts[a])}"
    return out


def cross_runtime_cmd(args: argparse.Namespace) -> None:
    from trainfree.hardware.calibration import calibration_sample

    space = get_space("llama", **json.loads(args.values))
    configs = calibration_sample(space, args.n, 0)
    quality = np.array([space.param_counts(c).decoder for c in configs], dtype=float)
    table: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for name, settings in RUNTIMES.items():
        hw = HardwareSettings(**_gen(args), **settings, repeats=args.repeats, max_repeats=3 * args.repeats)
        decode, prefill = np.full(len(configs), np.nan), np.full(len(configs), np.nan)
        for i, cfg in enumerate(configs):
            m = profile(space, cfg, hw)
            if m.ok:
                decode[i], prefill[i] = m.decode_ms_per_token, m.prefill_ms
            rows.append({"runtime": name, "i": i, "config": space.config_to_dict(cfg), **m.as_dict()})
            print(f"{name:16s} {i + 1}/{len(configs)}", end="\r", flush=True)
        table[name] = {"decode": decode, "prefill": prefill}
        print(f"{name:16s} {np.isfinite(decode).sum()} of {len(configs)} measured")
    out = {"n": len(configs), "quality": "decoder_params", "onnx": "not measured: no generate mode"}
    out.update(compare(table, quality))
    for key in ("spearman_decode", "spearman_prefill"):
        for pair, rho in out[key].items():
            print(f"{key:17s} {pair:36s} {rho:6.3f}")
    for pair, text in out["overlap"].items():
        print(f"frontier overlap  {pair:36s} {text}")
    out["rows"] = rows
    _dump(args.json, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--log", help="a log written by pip install --log FILE")
    group.add_argument("--build", action="store_true", help=f"build {LLAMACPP}'s wheel now, timed")
    p.add_argument("--json")
    for name in ("export", "references", "cross-runtime"):
        p = sub.add_parser(name)
        p.add_argument("--json")
        if name != "cross-runtime":
            p.add_argument("--names", nargs="*", help="reference models of the llama space (default: all)")
            p.add_argument("--config", nargs="*", help="config files instead of the reference models")
        if name != "export":
            p.add_argument("--prompt-len", type=int, default=GEN["prompt_len"])
            p.add_argument("--context", type=int, default=GEN["context"])
            p.add_argument("--new-tokens", type=int, default=GEN["new_tokens"])
            p.add_argument("--repeats", type=int, default=5)
    p = sub.choices["references"]
    p.add_argument("--quantize", nargs="*", default=list(QUANTS))
    p.add_argument("--threads", nargs="*", type=int, default=sorted({1, os.cpu_count() or 1}))
    p = sub.choices["cross-runtime"]
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--values", default="{}", help="value sets as JSON, e.g. '{\"hidden_size\": [256]}'")
    args = parser.parse_args()
    commands = {"install": install_cmd, "export": export_cmd, "references": references_cmd}
    commands["cross-runtime"] = cross_runtime_cmd
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
