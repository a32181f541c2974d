"""The fault kinds of issue 30 for ``benchmarks/faults.py``: what must never touch anything
outside the target, hang, or end in a traceback.

- ``symlink_logs``: ``evaluations.jsonl`` / ``generations.jsonl`` replaced by a link to a
  file outside the run whose last line is cut: refused (one line, exit 2), the file intact;
- ``fifo_files``: a FIFO in place of either log (refused at once) or of score-cache entries
  that a second run reads (recomputed): nothing hangs;
- ``symlink_configs``: ``configs/`` a link to an outside folder holding ``.*.tmp`` files: they
  survive the resume;
- ``non_run_folder``: ``search --out`` into a folder of the user's files: refused, unchanged;
- ``export_overlap``: ``export --force`` whose ``--out`` is the run, its parent, a folder
  inside it, a symlink, or the current folder: refused, the run and the link intact;
- ``export_interrupted``: an export killed (``kill -9``) or stopped (SIGTERM) at a random
  moment: no traceback, and no temporary folder left once the next export ran;
- ``signal_early``: Ctrl-C to the whole process group, or SIGTERM, in the first seconds of a
  search: exit 130/143 (or 0), no traceback, and the resume loses nothing;
- ``replay_bounds``: a hand-edited last line of ``generations.jsonl`` (``pop_size`` of ten
  million, ``F`` of the wrong shape, keys that are numbers): the resume is quick and clean;
- ``bad_records``: records of the wrong shape in ``evaluations.jsonl`` (a string index, a
  missing config, a config of another shape): skipped with a warning, nothing else lost.

Every case counts as one injected fault; ``Lab.cli`` counts a command past its time limit
as a hang, and the sentinel folder (hashed before and after) catches writes outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from fault_lab import FAST, Lab, Outcome, kill_partway


def _expect(o: Outcome, lab: Lab, code: int, wanted: tuple[int, ...], what: str, needle: str = "") -> None:
    last = (lab.stderr().strip().splitlines() or [""])[-1]
    if code not in wanted or (needle and needle not in last):
        o.problems.append(f"{what}: exit {code}, last line {last[-200:]!r}")


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _planted(lab: Lab, name: str, data: bytes) -> Path:
    """A file of the user's in the sentinel folder (the hash is taken again)."""
    path = lab.sentinel / name
    path.write_bytes(data)
    lab.before = lab.sentinel_hash()
    return path


def fault_symlink_logs(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    victim = _planted(lab, "v.txt", b"keep\nlast")
    for name in ("evaluations.jsonl", "generations.jsonl"):
        path = lab.out / name
        saved = path.read_bytes() if path.exists() else b""
        path.unlink(missing_ok=True)
        path.symlink_to(victim)
        o.injected += 1
        code = lab.cli("search", "--resume", "--out", str(lab.out))
        _expect(o, lab, code, (2,), f"symlinked {name}", "symbolic link")
        path.unlink()
        path.write_bytes(saved)
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def fault_fifo_files(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    for name in ("evaluations.jsonl", "generations.jsonl"):
        path = lab.out / name
        saved = path.read_bytes() if path.exists() else b""
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        o.injected += 1
        code = lab.cli("search", "--resume", "--out", str(lab.out), timeout=60)
        _expect(o, lab, code, (2,), f"FIFO {name}", "FIFO")
        path.unlink()
        path.write_bytes(saved)
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)
    # score-cache entries that a second run (another folder, the same settings) reads
    entries = [p for p in (lab.cache / "scores").rglob("*.json") if p.is_file()]
    for entry in lab.rng.sample(entries, k=min(2, len(entries))):
        entry.unlink()
        os.mkfifo(entry)
        o.injected += 1
    second = lab.root / "second"
    code = lab.run(out=second, timeout=120)
    o.resumed += 1
    if code != 0:
        o.problems.append(f"a run reading FIFO cache entries exited {code}")
    else:
        lab.check(o, set(), out=second)


def fault_symlink_configs(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    (lab.sentinel / "dir" / ".mine.tmp").write_text("the user's\n")
    lab.before = lab.sentinel_hash()
    configs = lab.out / "configs"
    if configs.is_dir() and not configs.is_symlink():
        shutil.rmtree(configs)
    configs.unlink(missing_ok=True)
    configs.symlink_to(lab.sentinel / "dir")
    o.injected += 1
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def fault_non_run_folder(lab: Lab, o: Outcome) -> None:
    folder = lab.root / "D"
    (folder / "configs").mkdir(parents=True)
    for name in (".draft.tmp", "configs/frontier_notes.json", "evaluated.csv", "frontier.json"):
        (folder / name).write_text(f"the user's {name}\n")
    before = _tree_hash(folder)
    o.injected += 1
    code = lab.run(out=folder)
    _expect(o, lab, code, (2,), "a folder that is not a run", "no search run")
    if _tree_hash(folder) != before:
        o.outside += 1
        o.problems.append("the user's folder changed")


def _finished(lab: Lab, o: Outcome) -> bool:
    if lab.run() != 0:
        o.problems.append(f"the run to export failed: {lab.stderr().strip().splitlines()[-1:]}")
        return False
    return True


def fault_export_overlap(lab: Lab, o: Outcome) -> None:
    if not _finished(lab, o):
        return
    link = lab.root / "link"
    link.symlink_to(lab.sentinel / "dir")
    before = _tree_hash(lab.out)
    cases = {
        "the run": lab.out,
        "its parent": lab.root,
        "inside it": lab.out / "configs" / "x",
        "a symlink": link,
        "the current folder": Path("."),
    }
    for what, out in cases.items():
        o.injected += 1
        args = ["export", "--run", str(lab.out), "--pick", "0", "--out", str(out), "--force"]
        code = lab.cli(*args, cwd=lab.out)
        _expect(o, lab, code, (2,), f"export --out {what}", "--out")
    if _tree_hash(lab.out) != before or not link.is_symlink():
        o.outside += 1
        o.problems.append("export --force changed its own input or the link")
    stray = [p.name for p in lab.root.iterdir() if ".old-" in p.name or ".tmp-" in p.name]
    if stray:
        o.problems.append(f"stray export folders: {stray}")


def fault_export_interrupted(lab: Lab, o: Outcome) -> None:
    if not _finished(lab, o):
        return
    exports = lab.root / "exports"
    exports.mkdir()
    for sig in (signal.SIGKILL, signal.SIGTERM):
        log = lab.root / f"stderr-{len(lab.logs)}.txt"
        lab.logs.append(log)
        cmd = [lab.args()[0], "-m", "trainfree", "export", "--run", str(lab.out), "--pick", "0"]
        cmd += ["--out", str(exports / f"e{sig}")]
        proc = subprocess.Popen(cmd, env=lab.env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        deadline = time.time() + 60  # until its temporary folder exists, then a random moment
        while time.time() < deadline and proc.poll() is None and not list(exports.glob(".*.tmp-*")):
            time.sleep(0.01)
        time.sleep(lab.rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(sig)
            o.injected += 1
        code = proc.wait(120)
        if sig == signal.SIGTERM and code not in (0, 143):
            o.problems.append(f"export stopped by SIGTERM exited {code}")
    code = lab.cli("export", "--run", str(lab.out), "--pick", "0", "--out", str(exports / "next"))
    _expect(o, lab, code, (0,), "the next export")
    left = [p.name for p in exports.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    if left:
        o.problems.append(f"temporary export folders left: {left}")


def fault_signal_early(lab: Lab, o: Outcome) -> None:
    log_count = len(lab.logs)
    proc = lab.start(start_new_session=True)  # its own process group, as a terminal's job
    # the seconds of imports, the fork server's start and the first generation
    time.sleep(lab.rng.uniform(0.2, 5.0))
    use_term = lab.rng.random() < 0.4
    if proc.poll() is None:
        try:
            if use_term:
                proc.send_signal(signal.SIGTERM)
            else:  # a terminal's Ctrl-C: the main process, its fork server and workers
                os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        else:
            o.injected += 1
    code = proc.wait(120)
    if code not in (0, 130, 143):
        o.problems.append(f"stopped in its first seconds: exit {code}: {lab.stderr(log_count)[-300:]!r}")
    keep = lab.finished()
    lab.resume(o)
    lab.check(o, keep)


def _edit_last(path: Path, change: Callable[[dict], None]) -> bool:
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines:
        return False
    entry = json.loads(lines[-1])
    change(entry)
    path.write_text("\n".join([*lines[:-1], json.dumps(entry)]) + "\n")
    return True


def fault_replay_bounds(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    edits = [
        lambda e: e.update(pop_size=10_000_000),
        lambda e: e.update(F=[[1.0]], keys=e.get("keys", ["x"])),
        lambda e: e.update(keys=[1, 2], F=[[1, 2], [3, 4]], G=[[0], [0]]),
        lambda e: e.update(norm=[[0], [1, 2, 3]]),
    ]
    if _edit_last(lab.out / "generations.jsonl", lab.rng.choice(edits)):
        o.injected += 1
    keep = lab.finished()
    t0 = time.time()
    lab.resume(o)
    if time.time() - t0 > 120:
        o.problems.append(f"the resume took {time.time() - t0:.0f} s")
    lab.check(o, keep)


def fault_bad_records(lab: Lab, o: Outcome) -> None:
    kill_partway(lab, o)
    path = lab.out / "evaluations.jsonl"
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    intact = [i for i, line in enumerate(lines) if line.endswith(b"\n")]
    destroyed = set()
    for i in lab.rng.sample(intact, k=min(2, len(intact))):
        rec = json.loads(lines[i])
        destroyed.add(rec["key"])
        damage = [
            lambda r: r.update(index=str(r["index"])),
            lambda r: r.pop("config"),
            lambda r: r.update(config=[1]),
        ]
        lab.rng.choice(damage)(rec)
        lines[i] = (json.dumps(rec) + "\n").encode()
        o.injected += 1
    path.write_bytes(b"".join(lines))
    keep = lab.finished() - destroyed
    lab.resume(o)
    lab.check(o, keep)


PROBE_FAULTS: dict[str, tuple[Callable[[Lab, Outcome], None], list[str], int]] = {
    "symlink_logs": (fault_symlink_logs, FAST, 12),
    "fifo_files": (fault_fifo_files, FAST, 12),
    "symlink_configs": (fault_symlink_configs, FAST, 12),
    "non_run_folder": (fault_non_run_folder, FAST, 8),
    "export_overlap": (fault_export_overlap, FAST, 4),
    "export_interrupted": (fault_export_interrupted, FAST, 4),
    "signal_early": (fault_signal_early, FAST, 24),
    "replay_bounds": (fault_replay_bounds, FAST, 16),
    "bad_records": (fault_bad_records, FAST, 12),
}
