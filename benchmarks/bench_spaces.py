"""Parameter-count match rates against every published count, and model build times.

    .venv/bin/python benchmarks/bench_spaces.py [--repeats 3]

For each benchmark: how many architectures' analytic counts equal the published ones, and
how many meta-device builds count the same parameters. Then the wall time to build (and
randomly initialise) one real model per space for its smallest, median and largest benchmark
config by total parameters (median of ``--repeats`` builds each).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time

import yaml

from trainfree.bench import load_benchmark
from trainfree.data import data_root

LTS_BUCKETS = {
    "AdaEmb": "embedding",
    "Attn": "attention",
    "FFN": "ffn",
    "nonembedding": "decoder",
    "total": "total",
}


def count_matches() -> None:
    root = data_root()
    print(f"data: {root}")
    with open(root / "nas-bench-bert" / "BERT_results_activation.csv") as fh:
        published = {row["ID"]: int(float(row["Number of Parameters"])) for row in csv.DictReader(fh)}
    bench = load_benchmark("flexibert-published", root / "nas-bench-bert")
    ok = sum(bench.space.param_counts(e.config).total == published[e.id] for e in bench.entries)
    built = sum(
        _meta_total(bench.space, e.config) == bench.space.param_counts(e.config).total for e in bench.entries
    )
    print(
        f"flexibert-published: total == published {ok}/{len(bench)}; "
        f"meta build == analytic {built}/{len(bench)}"
    )
    bench = load_benchmark("flexibert", root / "nas-bench-bert")
    built = sum(
        _meta_total(bench.space, e.config) == bench.space.param_counts(e.config).total for e in bench.entries
    )
    print(f"flexibert (trained dims): meta build == analytic {built}/{len(bench)}")
    for folder in sorted((root / "lts").iterdir()):
        if not folder.is_dir():
            continue
        space = "gpt2" if "GPT2" in folder.name else "transxl"
        bench = load_benchmark(space, folder)
        summary = yaml.safe_load((folder / "params_summary.yaml").read_text())
        ok = built = 0
        for e in bench.entries:
            counts = bench.space.param_counts(e.config)
            ok += all(int(summary[e.id][k]) == getattr(counts, v) for k, v in LTS_BUCKETS.items())
            built += _meta_total(bench.space, e.config) == counts.total
        print(
            f"{folder.name}: all 5 buckets == published {ok}/{len(bench)}; "
            f"meta build == analytic {built}/{len(bench)}"
        )


def _meta_total(space, config) -> int:
    model = space.build(config, device="meta")
    return sum(p.numel() for p in model.parameters())


def build_times(repeats: int) -> None:
    root = data_root()
    sets = [
        ("flexibert", root / "nas-bench-bert"),
        ("flexibert-published", root / "nas-bench-bert"),
        ("gpt2", root / "lts" / "random_GPT2_wt103"),
        ("transxl", root / "lts" / "random_TransXL_wt103"),
    ]
    print(f"\nbuild + random init of one model on CPU (median of {repeats})")
    print(f"{'space':22s} {'config':>10s} {'params':>13s} {'seconds':>9s}")
    for name, path in sets:
        bench = load_benchmark(name, path)
        ranked = sorted(bench.entries, key=lambda e: bench.space.param_counts(e.config).total)
        for label, entry in (
            ("smallest", ranked[0]),
            ("median", ranked[len(ranked) // 2]),
            ("largest", ranked[-1]),
        ):
            times = []
            for r in range(repeats):
                t0 = time.perf_counter()
                bench.space.build(entry.config, seed=r)
                times.append(time.perf_counter() - t0)
            total = bench.space.param_counts(entry.config).total
            print(f"{name:22s} {label:>10s} {total:13,d} {statistics.median(times):9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    count_matches()
    build_times(args.repeats)


if __name__ == "__main__":
    main()
