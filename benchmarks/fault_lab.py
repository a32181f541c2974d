"""The laboratory of ``benchmarks/faults.py``: a run folder with its own caches and a
sentinel folder, the ``trainfree search`` processes started on it, the checks made after a
resume (nothing finished lost or repeated, frontier within the evaluated architectures,
nothing outside the folder changed, no traceback), and the ways a fault is injected (a kill
part-way, a corrupted line). ``tests/test_faults.py`` uses it too (through ``faults``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

TINY = ["n_layer=[1,2,3]", "d_model=[64,128]", "d_inner=[128,256,512]", "d_embed=[-1]", "div_val=[1]"]
#: proxies in a pool of 2 workers, analytic costs: the fast profile
FAST = ["--objectives", "params", "--pop-size", "8", "--seq-len", "32", "--workers", "2"]
#: every architecture measured on the CPU, proxies in-process: measurement children only
DEVICE = ["--objectives", "latency", "--costs", "measured", "--pop-size", "8", "--seq-len", "32"]
DEVICE += ["--repeats", "1", "--warmup", "0", "--workers", "1"]


@dataclass
class Outcome:
    """What one fault did; ``problems`` lists every broken invariant in words."""

    fault: str
    injected: int = 0
    resumed: int = 0
    lost: int = 0
    duplicates: int = 0
    tracebacks: int = 0
    hangs: int = 0  # commands that did not end within their time limit (killed)
    outside: int = 0  # checks that found a file outside the target changed
    problems: list[str] = field(default_factory=list)


class Lab:
    """A run folder, its own caches and a sentinel folder that must never change."""

    def __init__(self, root: Path, seed: int, profile: list[str], budget: int) -> None:
        self.root, self.rng = root, random.Random(seed)
        self.out, self.cache, self.sentinel = root / "run", root / "cache", root / "sentinel"
        self.profile, self.budget, self.seed = profile, budget, seed
        self.sentinel.mkdir(parents=True, exist_ok=True)
        for i in range(3):
            (self.sentinel / f"file{i}.txt").write_text(f"sentinel {i}\n")
        (self.sentinel / "dir").mkdir(exist_ok=True)
        (self.sentinel / "dir" / "frontier_000_arch00000.json").write_text("{}\n")
        self.before = self.sentinel_hash()
        self.env = {**os.environ, "TRAINFREE_CACHE": str(self.cache), "COLUMNS": "200"}
        self.logs: list[Path] = []
        self.hangs = 0

    # ------------------------------------------------------------------ processes
    def args(self, out: Path | None = None, budget: int | None = None) -> list[str]:
        sets = [x for v in TINY for x in ("--set", v)]
        return [
            sys.executable,
            "-m",
            "trainfree",
            "search",
            "--out",
            str(out or self.out),
            *sets,
            *self.profile,
            "--budget",
            str(budget or self.budget),
            "--seed",
            str(self.seed % 4),
        ]

    def start(self, out: Path | None = None, budget: int | None = None, **popen: object) -> subprocess.Popen:
        log = self.root / f"stderr-{len(self.logs)}.txt"
        self.logs.append(log)
        return subprocess.Popen(
            self.args(out, budget), env=self.env, stdout=subprocess.DEVNULL, stderr=log.open("w"), **popen
        )

    def run(self, out: Path | None = None, budget: int | None = None, timeout: float = 300) -> int:
        return self.wait(self.start(out, budget), timeout)

    def wait(self, proc: subprocess.Popen, timeout: float) -> int:
        """``proc``'s exit code; past ``timeout`` seconds of *awake* time it is killed and
        counted as a hang. Awake: a machine that pauses background work (SIGSTOP while
        someone times) stops this harness too, and those minutes are not the command's."""
        awake, t = 0.0, time.monotonic()
        while True:
            try:
                return proc.wait(1.0)
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                awake, t = awake + min(now - t, 2.0), now
                if awake > timeout:
                    self.hangs += 1
                    proc.kill()
                    return proc.wait()

    def cli(self, *args: str, timeout: float = 120, **popen: object) -> int:
        """Run ``trainfree ARGS`` (stderr logged, a run past ``timeout`` killed and counted
        as a hang); returns its exit code."""
        log = self.root / f"stderr-{len(self.logs)}.txt"
        self.logs.append(log)
        cmd = [sys.executable, "-m", "trainfree", *args]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=log.open("w"), **popen)
        return self.wait(proc, timeout)

    def stderr(self, i: int = -1) -> str:
        return self.logs[i].read_text(errors="replace")

    def tracebacks(self) -> int:
        return sum(log.read_text(errors="replace").count("Traceback") for log in self.logs)

    def lines(self, name: str = "evaluations.jsonl") -> list[bytes]:
        path = self.out / name
        return path.read_bytes().splitlines(keepends=True) if path.exists() else []

    def wait_lines(self, proc: subprocess.Popen, at_least: int, timeout: float = 120) -> None:
        awake, t = 0.0, time.monotonic()  # awake time only, as in :meth:`wait`
        while awake < timeout and proc.poll() is None and len(self.lines()) < at_least:
            time.sleep(0.01)
            now = time.monotonic()
            awake, t = awake + min(now - t, 2.0), now

    def finished(self, out: Path | None = None) -> set[str]:
        """Keys of the intact records in ``evaluations.jsonl``: what must never be lost."""
        keys = set()
        path = (out or self.out) / "evaluations.jsonl"
        for line in path.read_bytes().splitlines(keepends=True) if path.exists() else []:
            with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError, TypeError):
                if line.endswith(b"\n"):
                    keys.add(json.loads(line)["key"])
        return keys

    def sentinel_hash(self) -> str:
        h = hashlib.sha256()
        for p in sorted(self.sentinel.rglob("*")):
            h.update(str(p.relative_to(self.sentinel)).encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ the checks
    def check(self, outcome: Outcome, must_keep: set[str], out: Path | None = None) -> None:
        import pandas as pd

        out = out or self.out
        outcome.tracebacks = self.tracebacks()
        try:
            table = pd.read_csv(out / "evaluated.csv")
            frontier = json.loads((out / "frontier.json").read_text())["models"]
        except (OSError, ValueError) as exc:
            outcome.problems.append(f"outputs unreadable: {exc}")
            return
        configs = list(table["config"])
        outcome.duplicates += len(configs) - len(set(configs))
        outcome.lost += len(must_keep - set(configs))
        indices: dict[str, set[int]] = {}
        for line in (out / "evaluations.jsonl").read_bytes().splitlines():
            with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError, TypeError):
                rec = json.loads(line)
                # a record trainfree refuses (an index that is not an integer, no config) is
                # skipped and kept on disk, and its architecture evaluated again: not a duplicate
                if type(rec["index"]) is int and isinstance(rec.get("config"), dict):
                    indices.setdefault(rec["key"], set()).add(rec["index"])
        outcome.duplicates += sum(len(v) - 1 for v in indices.values())
        if len(table["index"]) != len(set(table["index"])):
            outcome.problems.append("evaluated.csv: an index is used twice")
        outside = [
            m
            for m in frontier
            if json.dumps(m["config"], separators=(",", ":"), sort_keys=True) not in set(configs)
        ]
        if outside:
            outcome.problems.append(f"{len(outside)} frontier models not in evaluated.csv")
        if len(configs) < self.budget:
            outcome.problems.append(f"only {len(configs)} of {self.budget} architectures evaluated")
        if self.sentinel_hash() != self.before:
            outcome.outside += 1
            outcome.problems.append("a file outside the run folder changed")
        if outcome.duplicates or outcome.lost:
            outcome.problems.append(f"lost {outcome.lost}, duplicates {outcome.duplicates}")

    def resume(self, outcome: Outcome, budget: int | None = None) -> int:
        code = self.run(budget=budget)
        outcome.resumed += 1
        if code != 0:
            outcome.problems.append(f"resume exited {code}: {self.stderr().strip().splitlines()[-1:]}")
        return code


# ---------------------------------------------------------------------- helpers
def descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def forkserver_children(pid: int) -> list[psutil.Process]:
    """Workers started through the fork server (pool workers, measurement children)."""
    out = []
    for p in descendants(pid):
        with contextlib.suppress(psutil.Error):
            parent = p.parent()
            if parent is not None and "forkserver" in " ".join(parent.cmdline()):
                out.append(p)
    return out


def kill_partway(lab: Lab, outcome: Outcome, sig: int = signal.SIGKILL) -> int:
    """Start the run and send ``sig`` to its main process once a random number of
    architectures are finished; returns its exit code."""
    proc = lab.start()
    lab.wait_lines(proc, lab.rng.randint(1, lab.budget - 2))
    time.sleep(lab.rng.random() * 0.3)
    if proc.poll() is None:
        proc.send_signal(sig)
        outcome.injected += 1
    return proc.wait(120)


def corrupt_line(path: Path, rng: random.Random, last: bool) -> bool:
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    if len(lines) < (1 if last else 3):
        return False
    i = len(lines) - 1 if last else rng.randrange(1, len(lines) - 1)
    line = lines[i]
    choice = rng.randrange(3)
    if last and choice == 0:
        lines[i] = line[: len(line) // 2]  # cut short, as by a kill
    elif choice == 1:
        lines[i] = b"\xff\xfe" + line[2:]  # invalid UTF-8
    else:
        lines[i] = b'{"not": "a record"}\n' if rng.random() < 0.5 else line[:10] + b"}{garbage\n"
    path.write_bytes(b"".join(lines))
    return True


def table(outcomes: list[Outcome]) -> str:
    rows = {}
    fields = ("runs", "faults", "resumed", "lost", "dups", "tracebk", "hangs", "outside", "failed")
    widths = (5, 7, 8, 6, 6, 8, 6, 8, 7)
    for o in outcomes:
        r = rows.setdefault(o.fault, [0] * len(fields))
        values = (1, o.injected, o.resumed, o.lost, o.duplicates, o.tracebacks, o.hangs, o.outside)
        for i, v in enumerate((*values, int(bool(o.problems)))):
            r[i] += v
    head = f"{'fault':<27}" + "".join(f"{f:>{w}}" for f, w in zip(fields, widths, strict=True))
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<27}" + "".join(f"{v:>{w}}" for v, w in zip(r, widths, strict=True)))
    total = [sum(r[i] for r in rows.values()) for i in range(len(fields))]
    lines += [
        "-" * len(head),
        f"{'total':<27}" + "".join(f"{v:>{w}}" for v, w in zip(total, widths, strict=True)),
    ]
    return "\n".join(lines)
