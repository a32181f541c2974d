"""Fault injection for ``trainfree search``: the proof that nothing finished is lost.

Each fault is injected into a real ``trainfree search`` (a subprocess, tiny GPT-2 value sets,
small budgets), then the run is resumed with the same command, and these are checked:

- every architecture finished before the fault (an intact line of ``evaluations.jsonl``) is
  in ``evaluated.csv`` (else it counts as *lost*), and each appears there once (else a
  *duplicate*; an architecture evaluated twice in ``evaluations.jsonl`` counts too);
- every frontier model is an evaluated one (frontier ⊆ evaluated);
- no file outside the run folder changed (a sentinel folder, hashed before and after);
- no process printed a Python traceback.

Faults: kill -9 of the main process, of a proxy pool worker and of a measurement child, at
random moments; SIGTERM; corrupted lines (middle and last) of ``evaluations.jsonl`` and
``generations.jsonl``; corrupted entries of the score cache, the hardware cache and the
cost-model rows; a full disk (a small tmpfs, then remounted larger); two runs started on one
folder; a planted ``state.pkl`` and planted symlinks.

    python benchmarks/faults.py --repeats 3 --seed 0        # every fault, 3 seeds each
    python benchmarks/faults.py --faults kill_main,full_disk  # some of them

The fast subset runs in CI as ``tests/test_faults.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    # ------------------------------------------------------------------ processes
    def args(self, out: Path | None = None, budget: int | None = None) -> list[str]:
        sets = [x for v in TINY for x in ("--set", v)]
        return [
            sys.executable,
            "-m",
            "trainfree.cli",
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

    def start(self, out: Path | None = None, budget: int | None = None) -> subprocess.Popen:
        log = self.root / f"stderr-{len(self.logs)}.txt"
        self.logs.append(log)
        return subprocess.Popen(
            self.args(out, budget), env=self.env, stdout=subprocess.DEVNULL, stderr=log.open("w")
        )

    def run(self, out: Path | None = None, budget: int | None = None, timeout: float = 300) -> int:
        proc = self.start(out, budget)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stderr(self, i: int = -1) -> str:
        return self.logs[i].read_text(errors="replace")

    def tracebacks(self) -> int:
        return sum(log.read_text(errors="replace").count("Traceback") for log in self.logs)

    def lines(self, name: str = "evaluations.jsonl") -> list[bytes]:
        path = self.out / name
        return path.read_bytes().splitlines(keepends=True) if path.exists() else []

    def wait_lines(self, proc: subprocess.Popen, at_least: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and len(self.lines()) < at_least:
            time.sleep(0.01)

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
                indices.setdefault(rec["key"], set()).add(int(rec["index"]))
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


# ---------------------------------------------------------------------- the faults
def fault_kill_main(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def fault_sigterm(lab: Lab, o: Outcome) -> None:
    code = kill_partway(lab, o, signal.SIGTERM)
    if o.injected and code not in (143, 0):
        o.problems.append(f"SIGTERM: exit {code}, expected 143")
    if code == 143 and "--resume" not in lab.stderr():
        o.problems.append("SIGTERM: no word on how to continue")
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def _kill_worker(lab: Lab, o: Outcome) -> None:
    proc = lab.start()
    deadline = time.time() + 120
    target_at = time.time() + lab.rng.uniform(0.5, 4.0)
    while proc.poll() is None and time.time() < deadline:
        workers = forkserver_children(proc.pid)
        if workers and time.time() >= target_at:
            with contextlib.suppress(psutil.Error):
                lab.rng.choice(workers).kill()
                o.injected += 1
                break
        time.sleep(0.02)
    code = proc.wait(300)
    if code != 0:
        o.problems.append(f"the run whose worker was killed exited {code}: {lab.stderr()[-600:]!r}")
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


fault_kill_pool_worker = _kill_worker  # FAST profile: forkserver children are pool workers
fault_kill_measure_child = _kill_worker  # DEVICE profile: they are measurement children


def _corrupt(name: str, last: bool) -> Callable[[Lab, Outcome], None]:
    def fault(lab: Lab, o: Outcome) -> None:
        kill_partway(lab, o)
        before = lab.finished()
        if corrupt_line(lab.out / name, lab.rng, last):
            o.injected += 1
        keep = lab.finished() & before  # a destroyed record cannot be kept; every other one must
        lab.resume(o)
        lab.check(o, keep)

    return fault


fault_corrupt_evaluations_middle = _corrupt("evaluations.jsonl", last=False)
fault_corrupt_evaluations_last = _corrupt("evaluations.jsonl", last=True)
fault_corrupt_generations_middle = _corrupt("generations.jsonl", last=False)
fault_corrupt_generations_last = _corrupt("generations.jsonl", last=True)


def _corrupt_cache_files(files: list[Path], rng: random.Random) -> int:
    n = 0
    for f in rng.sample(files, k=min(len(files), max(1, len(files) // 3))):
        text = f.read_text(errors="replace")
        kind = rng.randrange(4)
        if kind == 0:
            f.write_text(text[: len(text) // 2])
        elif kind == 1:
            f.write_bytes(b"\xff\x00garbage")
        elif kind == 2:
            f.write_text(
                text.replace('"memory_mb": ', '"memory_mb": "lots", "x": ', 1).replace(
                    '"value": ', '"value": "lots", "x": ', 1
                )
            )
        else:
            f.write_text(text.replace("e", "E", 3))
        n += 1
    return n


def _second_run_reads_the_cache(lab: Lab, o: Outcome, folder: str) -> None:
    """A finished run fills the cache, entries are corrupted, a second run (another folder,
    the same settings) reads them: it must recompute, finish and agree with the first."""
    import pandas as pd

    if lab.run() != 0:
        o.problems.append(f"first run failed: {lab.stderr().strip().splitlines()[-1:]}")
        return
    files = [p for p in (lab.cache / folder).rglob("*.json") if p.is_file()]
    o.injected += _corrupt_cache_files(files, lab.rng)
    second = lab.root / "second"
    code = lab.run(out=second)
    o.resumed += 1
    if code != 0:
        o.problems.append(f"second run exited {code}: {lab.stderr().strip().splitlines()[-1:]}")
        return
    lab.check(o, lab.finished(), out=second)
    a, b = pd.read_csv(lab.out / "evaluated.csv"), pd.read_csv(second / "evaluated.csv")
    column = "latency_ms" if folder == "hardware" else "zerolm"
    merged = a.merge(b, on="config")
    if column in merged and column == "zerolm":
        bad = merged[~((merged[f"{column}_x"] - merged[f"{column}_y"]).abs() <= 1e-9)].dropna(how="all")
        if len(bad):
            o.problems.append(f"{len(bad)} scores differ after the score cache was corrupted")
    if column == "latency_ms" and f"{column}_y" in merged:
        values = pd.to_numeric(merged[f"{column}_y"], errors="coerce")
        if values.isna().any() or (values <= 0).any():
            o.problems.append("a corrupted hardware-cache value reached evaluated.csv")


def fault_corrupt_score_cache(lab: Lab, o: Outcome) -> None:
    _second_run_reads_the_cache(lab, o, "scores")


def fault_corrupt_hardware_cache(lab: Lab, o: Outcome) -> None:
    _second_run_reads_the_cache(lab, o, "hardware")


def fault_corrupt_costmodel_rows(lab: Lab, o: Outcome) -> None:
    """Calibrate (fills ``costmodels/``), corrupt its rows, calibrate again and search on
    predicted costs: both must finish without a traceback."""
    sets = [x for v in TINY for x in ("--set", v)]
    hw = ["--seq-len", "32", "--repeats", "1", "--warmup", "0"]
    cal = [sys.executable, "-m", "trainfree.cli", "calibrate", "-n", "12", *sets, *hw]
    log = lab.root / "stderr-calibrate.txt"
    lab.logs.append(log)
    subprocess.run(cal, env=lab.env, stdout=subprocess.DEVNULL, stderr=log.open("w"), timeout=300)
    for f in (lab.cache / "costmodels").glob("*.json"):
        data = json.loads(f.read_text())
        rows = data["rows"]
        for row in lab.rng.sample(rows, k=max(1, len(rows) // 3)):
            kind = lab.rng.randrange(4)
            if kind == 0:
                row["features"] = {k: "lots" for k in row["features"]}
            elif kind == 1:
                row.pop(next(k for k in row if k not in ("key", "features")), None)
            elif kind == 2:
                row["latency_ms"] = -5
            else:
                row["features"] = None
            o.injected += 1
        f.write_text(json.dumps(data))
    log2 = lab.root / "stderr-calibrate-2.txt"
    lab.logs.append(log2)
    code = subprocess.run(cal, env=lab.env, stdout=subprocess.DEVNULL, stderr=log2.open("w"), timeout=300)
    if code.returncode not in (0, 2):
        o.problems.append(f"calibrate on corrupted rows exited {code.returncode}")
    profile = [*lab.profile]
    profile[profile.index("measured")] = "predicted"
    lab.profile = [*profile, "--calibration", "12"]
    lab.resume(o)
    lab.check(o, set())


def fault_full_disk(lab: Lab, o: Outcome) -> None:
    disk = lab.root / "disk"
    disk.mkdir()
    size = lab.rng.choice(["12k", "24k", "48k", "96k"])
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True
    )
    if res.returncode:
        o.problems.append(f"skipped: cannot mount a tmpfs ({res.stderr.decode().strip()})")
        return
    try:
        lab.out = disk / "run"
        code = lab.run()
        o.injected += 1
        last = (lab.stderr().strip().splitlines() or [""])[-1]
        if code != 2 or "could not write" not in last or "nothing written before was lost" not in last:
            o.problems.append(f"full disk: exit {code}, last line {last!r}")
        keep = lab.finished()
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        lab.resume(o)
        lab.check(o, keep)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fault_concurrent(lab: Lab, o: Outcome) -> None:
    first = lab.start()
    time.sleep(lab.rng.uniform(0.0, 1.0))
    second = lab.start()
    o.injected += 1
    codes = sorted([first.wait(300), second.wait(300)])
    refused = [log for log in lab.logs[-2:] if "in use by another trainfree search" in log.read_text()]
    if codes != [0, 2] or not refused:
        o.problems.append(f"two runs on one folder: exit codes {codes}")
    lab.check(o, lab.finished())


class _Planted:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.target}",))


def fault_planted_pickle(lab: Lab, o: Outcome) -> None:
    import pickle

    kill_partway(lab, o)
    (lab.out / "state.pkl").write_bytes(pickle.dumps(_Planted(lab.sentinel / "PWNED")))
    o.injected += 1
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def fault_planted_symlinks(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    lab.out.mkdir(exist_ok=True)
    plants = {
        ".frontier.json.abcd1234.tmp": lab.sentinel / "file0.txt",
        ".evaluated.csv.xyz.tmp": lab.sentinel / "file1.txt",
        "frontier.csv": lab.sentinel / "file1.txt",
        "frontier.png": lab.sentinel / "file2.txt",
        "configs": lab.sentinel / "dir",
    }
    for name, target in plants.items():
        path = lab.out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        path.symlink_to(target)
        o.injected += 1
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)
    if (lab.out / "configs").is_symlink() or not list((lab.out / "configs").glob("frontier_*.json")):
        o.problems.append("configs/ is still a symlink or empty")


FAULTS: dict[str, tuple[Callable[[Lab, Outcome], None], list[str], int]] = {
    "kill_main": (fault_kill_main, FAST, 24),
    "kill_pool_worker": (fault_kill_pool_worker, FAST, 24),
    "kill_measure_child": (fault_kill_measure_child, DEVICE, 10),
    "sigterm": (fault_sigterm, FAST, 24),
    "corrupt_evaluations_middle": (fault_corrupt_evaluations_middle, FAST, 24),
    "corrupt_evaluations_last": (fault_corrupt_evaluations_last, FAST, 24),
    "corrupt_generations_middle": (fault_corrupt_generations_middle, FAST, 24),
    "corrupt_generations_last": (fault_corrupt_generations_last, FAST, 24),
    "corrupt_score_cache": (fault_corrupt_score_cache, FAST, 16),
    "corrupt_hardware_cache": (fault_corrupt_hardware_cache, DEVICE, 8),
    "corrupt_costmodel_rows": (fault_corrupt_costmodel_rows, DEVICE, 8),
    "full_disk": (fault_full_disk, FAST, 24),
    "concurrent": (fault_concurrent, FAST, 16),
    "planted_pickle": (fault_planted_pickle, FAST, 16),
    "planted_symlinks": (fault_planted_symlinks, FAST, 16),
}


def run_fault(name: str, seed: int, root: Path) -> Outcome:
    fn, profile, budget = FAULTS[name]
    outcome = Outcome(name)
    lab = Lab(root, seed, list(profile), budget)
    try:
        fn(lab, outcome)
    except Exception as exc:  # the harness itself: report, keep going
        outcome.problems.append(f"harness: {type(exc).__name__}: {exc}")
    outcome.tracebacks = lab.tracebacks()
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = {}
    for o in outcomes:
        r = rows.setdefault(o.fault, [0, 0, 0, 0, 0, 0])
        for i, v in enumerate((1, o.injected, o.resumed, o.lost, o.duplicates, o.tracebacks)):
            r[i] += v
    head = f"{'fault':<27}{'runs':>5}{'faults':>7}{'resumed':>8}{'lost':>6}{'dups':>6}{'tracebk':>8}"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<27}" + "".join(f"{v:>{w}}" for v, w in zip(r, (5, 7, 8, 6, 6, 8), strict=True)))
    total = [sum(r[i] for r in rows.values()) for i in range(6)]
    lines += [
        "-" * len(head),
        f"{'total':<27}" + "".join(f"{v:>{w}}" for v, w in zip(total, (5, 7, 8, 6, 6, 8), strict=True)),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="seeds per fault")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--faults", default="all", help=f"comma-separated, of: {', '.join(FAULTS)}")
    ap.add_argument("--json", type=Path, help="write every outcome here")
    args = ap.parse_args()
    names = list(FAULTS) if args.faults == "all" else args.faults.split(",")
    outcomes = []
    for name in names:
        for seed in range(args.seed, args.seed + args.repeats):
            with tempfile.TemporaryDirectory(prefix=f"faults-{name}-") as tmp:
                t0 = time.time()
                o = run_fault(name, seed, Path(tmp))
                outcomes.append(o)
                status = "ok" if not o.problems else "; ".join(o.problems)
                print(f"{name} seed {seed}: {time.time() - t0:.0f} s, {status}", file=sys.stderr, flush=True)
    print(table(outcomes))
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2) + "\n")
    bad = [o for o in outcomes if o.problems or o.tracebacks]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
