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
folder; a planted ``state.pkl`` and planted symlinks; and issue 30's kinds
(``faults_probe.py``): symlinked logs and ``configs/``, FIFOs, a folder that is not a run,
exports whose ``--out`` overlaps their input, interrupted exports, Ctrl-C/SIGTERM in a
search's first seconds, out-of-bounds replay entries, records of the wrong shape. The table
counts lost and duplicated architectures, tracebacks, hangs (a command past its time
limit) and writes outside the target (a sentinel folder hashed before and after).

    python benchmarks/faults.py --repeats 3 --seed 0        # every fault, 3 seeds each
    python benchmarks/faults.py --faults issue30 --repeats 12  # issue 30's kinds
    python benchmarks/faults.py --faults kill_main,full_disk  # some of them

The fast subset runs in CI as ``tests/test_faults.py``.
"""

from __future__ import annotations

import argparse
import contextlib
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
from pathlib import Path
from typing import Any

import psutil
from fault_lab import (  # the lab lives next to this script (its folder is on sys.path)
    DEVICE,
    FAST,
    TINY,
    Lab,
    Outcome,
    corrupt_line,
    forkserver_children,
    kill_partway,
    table,
)
from faults_probe import PROBE_FAULTS

__all__ = ["DEVICE", "FAST", "TINY", "Lab", "Outcome", "corrupt_line", "kill_partway", "table"]


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
            kind = lab.rng.randrange(6)
            if kind == 5:
                row["measured_at"] = lab.rng.choice(["yesterday", -1, None, [3]])
            elif kind == 0:
                row["features"] = {k: "lots" for k in row["features"]}
            elif kind == 1:
                row.pop(next(k for k in row if k not in ("key", "features")), None)
            elif kind == 2:
                row["latency_ms"] = -5
            elif kind == 3:
                row["genes"] = ["?"] * len(row.get("genes") or [0])
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


FAULTS.update(PROBE_FAULTS)  # issue 30: symlinks, FIFOs, non-run folders, exports, early stops


def run_fault(name: str, seed: int, root: Path) -> Outcome:
    fn, profile, budget = FAULTS[name]
    outcome = Outcome(name)
    lab = Lab(root, seed, list(profile), budget)
    try:
        fn(lab, outcome)
    except Exception as exc:  # the harness itself: report, keep going
        outcome.problems.append(f"harness: {type(exc).__name__}: {exc}")
    outcome.tracebacks = lab.tracebacks()
    outcome.hangs += lab.hangs
    if lab.sentinel_hash() != lab.before and not outcome.outside:
        outcome.outside += 1
        outcome.problems.append("a file outside the target changed")
    return outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="seeds per fault")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument(
        "--faults", default="all", help=f"all, issue30 (its kinds), or some of: {', '.join(FAULTS)}"
    )
    ap.add_argument("--json", type=Path, help="write every outcome here")
    args = ap.parse_args()
    names = {"all": list(FAULTS), "issue30": list(PROBE_FAULTS)}.get(args.faults) or args.faults.split(",")
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
