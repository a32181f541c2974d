"""Small file helpers. Results are written atomically: a reader (or a killed run) never sees
a half-written file, and an earlier result is replaced only by a complete new one.

Every write that fails (a full disk, a read-only folder, a path that is a file) raises
:class:`WriteError`, which names the file and says that nothing written earlier was lost
(an atomic write leaves the old file as it was; an append is cut back to where it started).
It is a :class:`~trainfree.errors.TrainfreeError`, so the command line prints it as one line
(exit 2), and an ``OSError``, so code that treats a failed cache write as a warning still can.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError


class WriteError(TrainfreeError, OSError):
    """A file could not be written; nothing that was on disk before was lost."""

    def __init__(self, path: str | Path, exc: OSError) -> None:
        why = exc.strerror or type(exc).__name__
        OSError.__init__(self, exc.errno, why)
        self.path = Path(path)
        self.reason = why

    def __str__(self) -> str:
        if self.errno in (errno.ENOSPC, errno.EDQUOT):
            return (
                f"could not write {self.path}: no space left on the device; nothing written before "
                "was lost: free some space and run the same command again"
            )
        return f"could not write {self.path}: {self.reason}; nothing written before was lost"


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to a temporary file in the same folder, fsync (unless told not to: a
    cache entry that may be lost in a power cut needs no fsync), then rename over ``path``."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # a unique name, created exclusively (O_EXCL) in the target folder: a planted file or
        # symlink cannot be written through
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise WriteError(p, exc) from None
    try:
        os.fchmod(fd, _mode_for(p))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(p, exc) from None
        raise
    return p


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` (whole lines) to ``path`` and fsync. A failed append is cut back to
    the file's previous length, so the file never ends in half a line of ours."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # never through a planted symlink: it could point anywhere
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            exc = OSError(exc.errno, "it is a symbolic link, which is not written through")
        raise WriteError(p, exc) from None
    start = os.fstat(fd).st_size
    try:
        data = text.encode("utf-8")
        while data:
            written = os.write(fd, data)
            data = data[written:]
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise WriteError(p, exc) from None
    finally:
        os.close(fd)


class UnsafeFileError(TrainfreeError, OSError):
    """A file that would be read (or trimmed) is not a regular file: a symbolic link (which
    could point at the user's own files), a FIFO or device (a read that never returns), or a
    folder. Reading never follows, blocks on or descends into such a thing."""

    def __init__(self, path: str | Path, what: str) -> None:
        OSError.__init__(self, errno.EINVAL, what)
        self.path = Path(path)
        self.what = what

    def __str__(self) -> str:
        return f"{self.path} is {self.what}; expected a regular file (nothing was read or changed)"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str | Path, write: bool = False, follow: bool = False) -> int:
    """A descriptor of ``path`` opened for reading (``write``: reading and writing), only if it
    is a regular file: never through a symbolic link (unless ``follow``: a file the user named
    on the command line), never blocking on a FIFO (``O_NONBLOCK`` at open, then ``fstat``).
    Raises :class:`UnsafeFileError` (missing: ``FileNotFoundError``)."""
    p = Path(path)
    flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(p, "a symbolic link" if not follow else "a symbolic link loop") from None
        if exc.errno == errno.EISDIR:
            raise UnsafeFileError(p, "a folder") from None
        if exc.errno == errno.ENXIO:
            raise UnsafeFileError(p, "a FIFO, socket or device") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFileError(p, _kind(mode))
    os.set_blocking(fd, True)
    return fd


def read_regular(path: str | Path, follow: bool = False, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`); ``limit``: refuse a
    file larger than this many bytes (a cache entry is small; a planted huge one is not read)."""
    fd = open_regular(path, follow=follow)
    try:
        if limit is not None and os.fstat(fd).st_size > limit:
            raise UnsafeFileError(path, f"larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def parse_json(data: bytes | str) -> Any:
    """``json.loads`` whose every failure is a ``ValueError``: invalid UTF-8, invalid JSON and
    a structure nested too deeply to parse (``RecursionError``) alike, so a reader that
    treats a damaged file as damaged needs one ``except``."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply to be read") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from None


def read_json(path: str | Path, follow: bool = False, limit: int | None = None) -> Any:
    """The JSON value in the regular file ``path``: ``FileNotFoundError`` if it is missing,
    :class:`UnsafeFileError` if it is not a regular file, ``ValueError`` if it does not parse."""
    return parse_json(read_regular(path, follow=follow, limit=limit))


def cut_to(path: str | Path, length: int) -> None:
    """Cut the regular file ``path`` back to ``length`` bytes (the tail of a write a kill cut
    short), never through a symbolic link or on anything but a regular file."""
    fd = open_regular(path, write=True)
    try:
        os.ftruncate(fd, length)
    except OSError as exc:
        raise WriteError(path, exc) from None
    finally:
        os.close(fd)


def make_dir(path: str | Path) -> Path:
    """``mkdir -p path``, failing as a :class:`WriteError` that names the folder."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(p, exc) from None
    return p


def real_dir(path: str | Path) -> Path:
    """``path`` as a directory of its own: created if missing; a symlink there (planted, or
    copied along with a run folder) is removed, not followed, so nothing is written into or
    deleted from the folder it points to."""
    p = Path(path)
    try:
        if p.is_symlink():
            p.unlink()
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(p, exc) from None
    return p


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, else what a plain ``open(path, "w")`` gives."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
