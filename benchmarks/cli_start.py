"""How fast the command line starts: wall time of commands that do no work (issue 26).

Each command runs in a fresh interpreter (as a user types it), ``--runs`` times after one
untimed run that warms the file cache; the script prints the median, the fastest and the
slowest wall time, and whether the command imported torch (read from ``-X importtime``).
Run it quiet and beside a busy loop to see what load does to start-up.

    python benchmarks/cli_start.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "trainfree --version": ["--version"],
    "trainfree --help": ["--help"],
    "trainfree search --help": ["search", "--help"],
    "trainfree spaces": ["spaces"],
}


def wall_times(args: list[str], runs: int) -> list[float]:
    """Seconds from start to exit of ``python -m trainfree ARGS``, ``runs`` times."""
    env = {**os.environ, "COLUMNS": "80"}
    command = [sys.executable, "-m", "trainfree", *args]
    subprocess.run(command, capture_output=True, env=env, check=True)  # the file cache, warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return times


def imports_torch(args: list[str]) -> bool:
    command = [sys.executable, "-X", "importtime", "-m", "trainfree", *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    return any(line.split("|")[-1].strip() == "torch" for line in done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command")
    runs = parser.parse_args().runs
    print(f"{'command':<26}{'median s':>10}{'min s':>8}{'max s':>8}  torch imported")
    for name, args in COMMANDS.items():
        times = wall_times(args, runs)
        torch = "yes" if imports_torch(args) else "no"
        print(f"{name:<26}{statistics.median(times):>10.3f}{min(times):>8.3f}{max(times):>8.3f}  {torch}")
    print(f"wall time from start to exit of a fresh interpreter, {runs} runs each after a warm-up run")


if __name__ == "__main__":
    main()
