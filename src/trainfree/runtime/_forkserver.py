"""Imported by the fork server only, first of its preloaded modules (``workers.worker_context``);
never import it elsewhere: it changes the process's handling of Ctrl-C and of uncaught errors.

- Ctrl-C is ignored from here on: the server spends seconds importing torch before Python's
  own fork-server code ignores it, and a terminal's Ctrl-C reaches the whole process group;
  the process that owns the workers handles it (and kills them).
- A child that cannot start prints one line, not a traceback: when its owner stops while a
  worker is being forked, the owner's semaphores are gone before the child can open them
  (``FileNotFoundError`` in ``SemLock._rebuild``: said nothing about, as the owner has
  said it stopped); the fork server reports a failure through ``sys.excepthook``, which its
  children inherit from here.
"""

from __future__ import annotations

import signal
import sys
from types import TracebackType


def _one_line(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    files = []
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if issubclass(kind, FileNotFoundError) and files and files[-1].endswith("synchronize.py"):
        return  # its owner stopped and removed its semaphores: nothing is lost, nothing to say
    sys.stderr.write(f"trainfree: a worker process did not start ({kind.__name__}: {exc})\n")


signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.excepthook = _one_line
