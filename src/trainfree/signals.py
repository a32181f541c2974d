"""Ctrl-C and SIGTERM, for the command line.

A stop must never cost more than what was running, and never print a traceback. So SIGTERM
is raised where the process is, as Ctrl-C is (:class:`~trainfree.errors.Terminated`, a
``KeyboardInterrupt``): the same clean-up runs (a search keeps everything finished, an
export removes its temporary folder) and the command line ends with one line, exit 130 or 143
(:mod:`trainfree.cli.boundary`). Where a stop half-way would leave a module half-imported or a
file set half-written (the outputs of a search), :func:`deferred` holds the signal until the
block is done. The fork server that starts worker processes is started with Ctrl-C ignored:
it imports torch for seconds before Python's own code ignores it, and a Ctrl-C in that
window printed its traceback (:func:`sigint_ignored`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from trainfree.errors import Terminated

STOPS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def raise_terminated(signum: int, frame: Any) -> None:
    """The SIGTERM handler: raise :class:`Terminated` where the main thread is."""
    raise Terminated


def quiet_interrupts() -> Any:
    """Make SIGTERM raise :class:`Terminated` (Ctrl-C raises ``KeyboardInterrupt`` already);
    returns the handler it replaced (None where signals cannot be set: another thread)."""
    if not _main_thread():
        return None
    return signal.signal(signal.SIGTERM, raise_terminated)


def restore_sigterm(previous: Any) -> None:
    """Put back the SIGTERM handler :func:`quiet_interrupts` replaced."""
    if previous is not None and _main_thread():
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then act on the first one that came
    (its handler runs as the block ends). A Python-level hold, not a signal mask: a mask
    blocks one thread only, and another thread of the process would take the signal."""
    if not _main_thread():
        yield
        return
    got: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in STOPS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if got:
            handler = previous[got[0]]
            if callable(handler):
                handler(got[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), got[0])


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for the block: a child started in it (the fork server) inherits the
    ignored disposition across its exec, before its own code can set one."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
