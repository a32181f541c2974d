"""Where an export writes, and what it may never touch.

An export is written in a temporary sibling of ``--out`` and renamed into place when it is
complete and checked (:func:`staging`, :func:`publish`). ``--out`` is refused (one line,
nothing written) when it is a symbolic link (renaming it aside would replace the link and
strand a copy of it), the current folder or one above it, or when it is, holds or lies
inside an input of the export (the run folder, the config file): ``--force`` replaces
``--out`` as a whole, and must never delete what the export reads.

The temporary folders are named ``.<out>.tmp-<pid>-<random>`` (and a replaced folder, moved
aside, ``.<out>.old-<pid>-<random>``): an export killed outright (``kill -9``, a power cut)
cannot remove its own, so every export first removes those whose process is gone
(:func:`clean_stale`); a few hundred MB of a large model's weights are not left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from trainfree.errors import TrainfreeError

#: a temporary or moved-aside export folder: ``.<name>.tmp-<pid>-<random>``
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[A-Za-z0-9_]+")


def _forms(path: Path) -> set[Path]:
    """``path`` as written (made absolute) and with its symbolic links resolved."""
    return {Path(os.path.abspath(path)), Path(os.path.realpath(path))}


def within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it, however either is spelt."""
    return any(i == o or o in i.parents for i in _forms(inner) for o in _forms(outer))


def check_out(out: Path, force: bool, inputs: Sequence[Path] = ()) -> Path:
    """``out`` made absolute, or one line (:class:`TrainfreeError`) saying why it cannot be
    written: a file, a symbolic link, the current folder or one holding it, a folder that
    is, holds or lies inside one of ``inputs``, or a non-empty folder without ``force``."""
    out = Path(os.path.abspath(out))
    if out.is_symlink():
        raise TrainfreeError(f"--out {out} is a symbolic link; name the folder itself (the link is kept)")
    if out.exists() and not out.is_dir():
        raise TrainfreeError(f"--out {out} is a file; choose a folder")
    if within(Path.cwd(), out):
        raise TrainfreeError(f"--out {out} is the current folder or holds it; choose a new folder")
    for source in inputs:
        if within(source, out) or within(out, source):
            raise TrainfreeError(
                f"--out {out} overlaps the export's input {source} (it is, holds or lies inside it); "
                "choose a folder outside it"
            )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TrainfreeError(f"--out {out} exists and is not empty; choose another folder or pass --force")
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def stale(folder: Path) -> Iterator[Path]:
    """Temporary export folders in ``folder`` whose process is gone."""
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            m = _LEFTOVER.fullmatch(p.name)
            if m and p.is_dir() and not p.is_symlink() and not _alive(int(m["pid"])):
                yield p


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary folders of exports that were killed (see the module docstring)."""
    removed = []
    for p in list(stale(folder)):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def staging(out: Path) -> Path:
    """A new temporary folder beside ``out``, named for this process."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))


def publish(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out`` (an old ``out`` is moved aside first and
    deleted after, so that at every moment one complete folder is in place)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp, *tmp.rglob("*")):  # mkdtemp/mkstemp made them private
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
