"""Trained-architecture benchmarks: loaders, rank-correlation evaluation and the harness."""

from trainfree.bench.correlation import RankResult, rank_correlation
from trainfree.bench.loaders import Benchmark, BenchmarkEntry, default_data_path, load_benchmark

__all__ = [
    "Benchmark",
    "BenchmarkEntry",
    "RankResult",
    "default_data_path",
    "load_benchmark",
    "rank_correlation",
]
