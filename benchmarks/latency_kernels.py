"""Would kernel-level features (nn-Meter's idea) make GPT-2 latency predictions better here?

Each architecture's forward pass is recorded once (a ``TorchDispatchMode`` that notes every
matrix product, softmax, LayerNorm and GELU with its shapes, and counts the other ops); every
distinct (op, shapes) is then timed alone on this machine, one thread, median of 9 runs; the
sum over an architecture's ops is its *kernel time*. The script fits the library's cost model
(``fit_cost_model``) with and without the kernel time (and the op count) as extra features on
a calibration sample, and judges each on held-out architectures: the share within +-10%.

    python benchmarks/latency_kernels.py --cache DIR [-n 150] [--held-out 40]

``--cache``: a hardware cache (``MeasurementCache``) whose measurements of the calibration
sample (Latin hypercube, seed 0) and the held-out sample (uniform, seed 1) are read back;
what it lacks is measured now (about 2 s per model). Quiet machine: the kernels are timed.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch.utils._python_dispatch import TorchDispatchMode

from trainfree import get_space
from trainfree.hardware import MeasurementCache, profile_cached
from trainfree.hardware.calibration import calibration_sample, measured_row
from trainfree.hardware.costmodel import accuracy, fit_cost_model
from trainfree.search.settings import SEARCH_HARDWARE

#: ops timed alone (what they run), the rest only counted
TIMED = {
    "linear": F.linear,
    "matmul": torch.matmul,
    "softmax": lambda x: torch.softmax(x, -1),
    "log_softmax": lambda x: torch.log_softmax(x, -1),
    "gelu": F.gelu,
    "layer_norm": lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b),
}


class Recorder(TorchDispatchMode):
    """Counts every op of a forward pass; the timed ones by their input shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split("::")[-1]
        shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        self.ops[(name, shapes) if name in TIMED else ("other", ())] += 1
        return func(*args, **(kwargs or {}))


def record(space, config, seq_len: int) -> collections.Counter:
    model = space.build(config, seed=0)
    ids = space.example_input(config, 1, seq_len, seed=0)
    rec = Recorder()
    with torch.inference_mode(), rec:
        space.inference(model, ids)
    return rec.ops


def time_op(name: str, shapes: tuple) -> float:
    """Milliseconds, median of 9 runs after 2 warm-up runs, on random inputs of ``shapes``."""
    inputs = [torch.randn(*s) for s in shapes]
    fn = TIMED[name]
    runs = []
    with torch.inference_mode():
        for i in range(11):
            t = time.perf_counter()
            fn(*inputs)
            if i >= 2:
                runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("-n", type=int, default=150)
    parser.add_argument("--held-out", type=int, default=40)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    space = get_space("gpt2")
    hw = dataclasses.replace(SEARCH_HARDWARE, seq_len=192)
    rng = np.random.default_rng(1)
    samples = {
        "fit": calibration_sample(space, args.n, 0),
        "test": [space.sample(rng) for _ in range(args.held_out)],
    }
    cache = MeasurementCache(args.cache)
    rows = {
        k: [measured_row(space, c, hw, profile_cached(space, c, hw, cache)[0]) for c in v]
        for k, v in samples.items()
    }
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ops = {space.config_to_json(c): record(space, c, hw.seq_len) for v in samples.values() for c in v}
    table = {sig: 0.0 for counter in ops.values() for sig in counter if sig[0] != "other"}
    for sig in table:
        table[sig] = time_op(*sig)
    seconds = time.perf_counter() - t0
    print(f"{len(ops)} architectures recorded, {len(table)} distinct kernels timed in {seconds:.0f} s")
    for key, counter in ops.items():
        ops[key] = {
            "kernel_ms": sum(n * table[s] for s, n in counter.items() if s[0] != "other"),
            "n_ops": float(sum(counter.values())),
        }
    every = [r for v in rows.values() for r in v if r]
    y = np.array([r["latency_ms"] for r in every])
    k = np.array([ops[r["key"]]["kernel_ms"] for r in every])
    lo, hi = np.percentile(y / k, [10, 90])
    print(f"kernel time alone: Spearman {spearmanr(k, y)[0]:.3f} with the measured latency; "
          f"measured / kernel time {lo:.2f}-{hi:.2f} (10th-90th percentile)")  # fmt: skip
    print("| features | held out within 10% | median abs err |\n|---|---|---|")
    for label, extra in (("the library's", ()), ("+ kernel time", ("kernel_ms",)),
                         ("+ kernel time, op count", ("kernel_ms", "n_ops"))):  # fmt: skip

        def rows_with(rs, extra=extra):
            return [
                {**r, "features": {**r["features"], **{e: ops[r["key"]][e] for e in extra}}} for r in rs if r
            ]

        model = fit_cost_model(rows_with(rows["fit"]))
        test = rows_with(rows["test"])
        p = model.predict(
            [r["features"] for r in test], [r["weights_mb"] for r in test], [r["genes"] for r in test]
        )
        a = accuracy(p["latency_ms"], np.array([r["latency_ms"] for r in test]))
        print(f"| {label} | {a['within_10pct']:.0%} | {a['median_ape']:.1%} |")


if __name__ == "__main__":
    main()
