"""A run directory's state as plain data: the generation log, its replay, and the run lock.

Nothing in a run directory is ever unpickled or executed: run directories are copied, shared
and downloaded. The optimiser is not saved as an object; instead every finished generation
appends one line to ``generations.jsonl``: the architectures the optimiser asked for (their
keys) and the objective and constraint values it was told. On resume a new optimiser with the
run's seed is asked and told exactly the same again, through the same ``ask``/``tell`` as the
live loop (:mod:`trainfree.search.algorithms`; an optimiser is deterministic given its seed),
which rebuilds its population and random state without evaluating anything; evaluations come
from ``evaluations.jsonl``. If a replayed generation does not match (a changed pymoo, say), the
replay stops there with a warning and the search continues from that point: nothing finished
is lost, only the optimiser's path differs.

``settings.json`` is read back through the same checks as the command line's
(:func:`read_settings`), and a folder that holds files but no ``settings.json`` is never taken
for a new run (:func:`check_not_foreign`): a search writes and cleans files in its folder.

Two processes must not run in one folder: :class:`RunLock` holds an exclusive ``flock`` on
``<run>/.lock`` for the life of the run and names the holder's pid to the second one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainfree.errors import ConfigError, TrainfreeError
from trainfree.io import (
    UnsafeFileError,
    WriteError,
    append_text,
    cut_to,
    make_dir,
    parse_json,
    read_json,
    read_regular,
)
from trainfree.proxies.balance import Balance
from trainfree.search.algorithms import Optimiser
from trainfree.search.settings import SearchSettings

LOG_NAME = "generations.jsonl"


class RunDirError(TrainfreeError):
    """The run directory cannot be used as asked (in use, holds another run, unreadable)."""


class RunLock:
    """An exclusive lock on a run directory (``fcntl.flock``, released when the process dies)."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        make_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise WriteError(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.read(fd, 32).decode().strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise RunDirError(f"{self.path.parent} is in use by another trainfree search{who}") from None
        with contextlib.suppress(OSError):  # the pid only informs a second process (full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None


def read_log(out: Path, check: Callable[[Any], None] | None = None) -> list[dict[str, Any]]:
    """The finished generations (a last line cut by a kill is cut from the file; others must
    parse and pass ``check``: the first that does not ends the replay there, with a warning).
    Only a regular file is read (:func:`~trainfree.io.read_regular`): a symbolic link, a FIFO
    or a folder in its place is refused before anything is read or cut. Call it with the run
    locked: cutting the last line is a write."""
    path = Path(out) / LOG_NAME
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return []
    except UnsafeFileError as exc:
        raise RunDirError(str(exc)) from None
    except OSError as exc:
        raise RunDirError(f"{path} cannot be read ({exc.strerror or exc})") from None
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        cut_to(path, len(data) - len(lines[-1]))
        lines = lines[:-1]
    out_lines = []
    for number, line in enumerate(lines, 1):
        try:
            entry = parse_json(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("generation"), int):
                raise ValueError("not a generation entry")
            if check is not None:
                check(entry)
        except ValueError as exc:
            warnings.warn(
                f"{LOG_NAME} line {number} unreadable ({exc}); the optimiser is "
                "rebuilt up to the line before it",
                RuntimeWarning,
                stacklevel=2,
            )
            break
        out_lines.append(entry)
    return out_lines


def append_end(out: Path, log: list[dict[str, Any]], entry: dict[str, Any], changed: bool) -> None:
    """Append a session's closing entry, unless the session changed nothing and the log
    already ends with the same closing entry: reopening a finished run (to reprint it)
    leaves ``generations.jsonl`` as it was."""
    last = log[-1] if log else None
    same = last is not None and "keys" not in last and last.get("generation") == entry.get("generation")
    if same and not changed:
        return
    append_log(out, entry)


def append_log(out: Path, entry: dict[str, Any]) -> None:
    append_text(Path(out) / LOG_NAME, json.dumps(entry, separators=(",", ":")) + "\n")


def replay(optimiser: Optimiser, space: Any, entries: list[dict[str, Any]]) -> int:
    """Ask ``optimiser`` each logged generation again and tell it the logged values, as the
    live loop told it the evaluated ones; returns how many generations matched."""
    done = 0
    for entry in entries:
        if "keys" not in entry:
            continue
        X = optimiser.ask()
        keys = [space.config_to_json(space.decode(x)) for x in X]
        if keys != entry["keys"]:
            warnings.warn(
                f"generation {entry['generation']} of {LOG_NAME} does not replay (the optimiser "
                "changed?); the search continues from there",
                RuntimeWarning,
                stacklevel=2,
            )
            break
        F = np.array(entry["F"], dtype=float).reshape(len(keys), -1)
        G = np.array(entry["G"], dtype=float).reshape(len(keys), -1)
        optimiser.tell(F, G)
        done += 1
    return done


def clean_temporaries(out: Path) -> Iterator[Path]:
    """Remove what an atomic write killed half-way left behind (``.NAME.*.tmp``), in the run
    folder and its own ``configs/``: a ``configs`` that is a symbolic link is not entered
    (it points outside the run; the outputs replace it with a folder of the run's own)."""
    folders = [Path(out)]
    configs = Path(out) / "configs"
    if configs.is_dir() and not configs.is_symlink():
        folders.append(configs)
    for folder in folders:
        for tmp in folder.glob(".*.tmp"):
            if tmp.is_file() and not tmp.is_symlink():
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    yield tmp


def read_settings(out: Path) -> SearchSettings | None:
    """The run's saved settings (None: no ``settings.json``, so no run), read as a regular
    file only and checked like the command line's."""
    path = out / "settings.json"
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise RunDirError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is not a readable settings file ({exc})") from None
    try:
        return SearchSettings.from_dict(data)
    except KeyError as exc:  # an unknown space
        raise RunDirError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    except (ConfigError, TypeError) as exc:
        raise RunDirError(f"{path}: {exc}") from None


#: what a folder may hold and still be taken for a new run: a lock and a settings file that a
#: kill cut short (a run killed in its first milliseconds)
_NEW_RUN_LEFTOVERS = re.compile(r"\.lock|\.settings\.json\.[^/]*\.tmp")


def check_not_foreign(out: Path) -> None:
    """Refuse a folder that holds files but no run (no ``settings.json``): a search writes,
    cleans and replaces files in its folder, and must never do so among the user's own."""
    if not out.is_dir():
        return
    try:
        names = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise RunDirError(f"--out {out} cannot be read ({exc.strerror or exc})") from None
    foreign = sorted(n for n in names if not _NEW_RUN_LEFTOVERS.fullmatch(n))
    if foreign:
        raise RunDirError(
            f"--out {out} is not empty and holds no search run (no settings.json; it holds "
            f"{foreign[0]!r}{' and more' if len(foreign) > 1 else ''}); choose an empty or new folder"
        )


def saved_balance(saved: Any) -> Balance | None:
    """The balance a resumed run used, from its log; a damaged one is chosen again (the same
    label-free policy gives the same balance), with a warning that says so."""
    if not saved:
        return None
    try:
        return Balance.from_dict(saved)
    except ValueError as exc:
        warnings.warn(f"{LOG_NAME}: {exc}; the balance is chosen again", RuntimeWarning, stacklevel=2)
        return None
