"""Our search against LiteTransformerSearch's published frontier, on *this* machine.

LTS searched GPT-2 (LM1B settings: 50264 tokens, one softmax cluster, 32 positions) for an
Intel Core i7 and published its frontier models (``lts/pareto_GPT2_lm1b_corei7``). This
script

1. measures those models here with our profiler (latency and peak memory; LTS's own figures,
   taken on their machine, are printed beside ours for reference);
2. runs our search in the same space (same vocabulary, cutoffs, positions, weight tying; the
   LTS value sets for layers, widths, heads, embeddings) maximising decoder parameters - the
   proxy LTS used - against latency measured here, with the same input shape;
3. reports, for every LTS model, whether a model of our frontier dominates or matches it
   (at least as many decoder parameters, at most the latency, within the measured spread),
   the hypervolume of both frontiers on a common scale, and a plot.

    python benchmarks/lts_pareto_compare.py --budget 10m --out runs/lts_corei7

Re-running with the same ``--out`` resumes the search (a larger ``--budget`` extends it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from trainfree.bench import load_benchmark
from trainfree.data import data_root
from trainfree.hardware import HardwareSettings, MeasurementCache, profile_cached
from trainfree.search import SearchRun, SearchSettings
from trainfree.search.pareto import hypervolume, nondominated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", default="lts/pareto_GPT2_lm1b_corei7", help="under $TRAINFREE_DATA")
    ap.add_argument("--budget", default="10m", help="search budget (evaluations or wall time)")
    ap.add_argument("--out", default="runs/lts_corei7", help="search run directory (resumed if present)")
    ap.add_argument("--seq-len", type=int, default=32, help="tokens per forward pass (the models' tgt_len)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pop-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default="docs/img/lts_corei7_frontier.png")
    args = ap.parse_args()

    bench = load_benchmark("gpt2", data_root() / args.folder)
    space = bench.space
    hw = HardwareSettings(seq_len=args.seq_len, repeats=args.repeats, warmup=1, threads=args.threads)
    cache = MeasurementCache()

    # 1. the LTS frontier, measured here
    lts = []
    for e in bench.entries:
        m, _ = profile_cached(space, e.config, hw, cache)
        if not m.ok:
            print(f"{e.id}: {m.error}")
            continue
        lts.append(
            {
                "id": e.id,
                "decoder": space.param_counts(e.config).decoder,
                "latency": m.latency_ms,
                "spread": m.latency_p75_ms - m.latency_p25_ms,
                "memory": m.memory_mb,
                "lts_latency": e.extra.get("latency"),
                "lts_memory": e.extra.get("memory"),
            }
        )
    print(f"measured {len(lts)} LTS frontier models on this machine ({hw.name}, {args.seq_len} tokens)")

    # 2. our search in the same space
    genes = space.genes()
    names = [g.name for g in genes]
    fixed = {}
    for key in ("n_token", "cutoffs", "tgt_len", "tie_projs"):
        values = {json.dumps(space.to_genes(e.config)[names.index(key)]) for e in bench.entries}
        fixed[key] = [json.loads(v) for v in sorted(values)]
    out = Path(args.out)
    if (out / "settings.json").exists():
        run = SearchRun.resume(out, budget=args.budget)
    else:
        settings = SearchSettings(
            space="gpt2",
            space_values=fixed,
            proxy="decoder_params",
            objectives=["latency"],
            hardware=hw,
            budget=args.budget,
            pop_size=args.pop_size,
            seed=args.seed,
        )
        run = SearchRun.create(out, settings)
    result = run.run(
        on_progress=lambda p: (
            print(f"  gen {p.generation}: {p.evaluations} evaluated, frontier {p.frontier_size}")
            if p.message
            else None
        )
    )
    ours = [
        {"decoder": m["decoder_params"], "latency": m["latency_ms"], "memory": m["memory_mb"]}
        for m in result.frontier
    ]
    print(
        f"our search: {result.evaluations} architectures, {result.generations} generations, "
        f"{result.elapsed:.0f} s, frontier of {len(ours)}"
    )

    # 3. comparison
    dominated = matched = 0
    for r in lts:
        tol = max(r["spread"], 0.02 * r["latency"])
        best = [o for o in ours if o["decoder"] >= r["decoder"] and o["latency"] <= r["latency"] + tol]
        if any(o["latency"] <= r["latency"] and o["decoder"] >= r["decoder"] for o in best):
            dominated += 1
        elif best:
            matched += 1
    F_l = np.array([[-r["decoder"], r["latency"]] for r in lts])
    F_o = np.array([[-o["decoder"], o["latency"]] for o in ours])
    both = np.vstack([F_l, F_o])
    ideal, nadir = both.min(axis=0), both.max(axis=0)
    hv_l = hypervolume(F_l[nondominated(F_l)], ideal, nadir)
    hv_o = hypervolume(F_o, ideal, nadir)
    print(
        f"LTS models dominated by our frontier: {dominated}/{len(lts)}; matched within the latency "
        f"spread: {matched}; neither: {len(lts) - dominated - matched}"
    )
    print(f"hypervolume (decoder params vs latency, common scale): ours {hv_o:.4f}, LTS {hv_l:.4f}")
    mem = np.array([[r["memory"], r["lts_memory"]] for r in lts if r["lts_memory"]])
    lat = np.array([[r["latency"], r["lts_latency"]] for r in lts if r["lts_latency"]])
    if len(mem):
        print(
            f"memory, ours (peak added by the forward pass) vs LTS (profiler sum): median ratio "
            f"{np.median(mem[:, 0] / mem[:, 1]):.2f}, ours {np.median(mem[:, 0]):.1f} MB, "
            f"LTS {np.median(mem[:, 1]):.1f} MB"
        )
        print(
            f"latency, ours here vs LTS on their Core i7: median ratio {np.median(lat[:, 0] / lat[:, 1]):.2f}"
        )
    print(
        "\n| model | decoder params | latency here (ms) | LTS latency (ms) "
        "| peak memory here (MB) | LTS memory (MB) |"
    )
    print("|---|---|---|---|---|---|")
    for r in sorted(lts, key=lambda r: r["latency"])[:: max(1, len(lts) // 8)]:
        print(
            f"| {r['id']} | {r['decoder'] / 1e6:.2f}M | {r['latency']:.1f} | {r['lts_latency']:.1f} | "
            f"{r['memory']:.1f} | {r['lts_memory']:.1f} |"
        )
    _plot(Path(args.plot), lts, ours, run)
    print(f"wrote {args.plot}")


def _plot(path: Path, lts: list[dict], ours: list[dict], run: SearchRun) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, records, _ = run.frontier()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    pts = [(r.value("latency_ms"), r.value("decoder_params")) for r in records if r.feasible]
    ax.scatter(*zip(*pts, strict=True), s=8, c="0.75", label=f"evaluated by our search ({len(pts)})")
    o = sorted((x["latency"], x["decoder"]) for x in ours)
    ax.step(*zip(*o, strict=True), where="post", c="tab:red", lw=1.2)
    ax.scatter(*zip(*o, strict=True), s=22, c="tab:red", label=f"our frontier ({len(o)})", zorder=3)
    ax.scatter(
        [r["latency"] for r in lts],
        [r["decoder"] for r in lts],
        s=26,
        marker="x",
        c="tab:blue",
        label=f"LTS Core i7 frontier, measured here ({len(lts)})",
        zorder=4,
    )
    ax.set_xlabel("latency on this machine (ms)")
    ax.set_ylabel("decoder parameters")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
