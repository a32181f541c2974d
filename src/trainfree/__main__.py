"""``python -m trainfree`` and the ``trainfree`` command: SIGTERM is made an exception before
the command line's seconds of imports (torch), and a stop during them is one line, exit 130
(Ctrl-C) or 143 (SIGTERM), not an import traceback.

A stop during the imports ends with ``os._exit``: nothing has started that needs cleaning up,
and a Ctrl-C that landed in C code evaluating Python (pybind11's ``exec`` in torch's start-up)
leaves CPython's "unhandled Ctrl-C" flag set, which turned exit 130 into death by SIGINT (-2)
on a CI machine even though the interrupt was caught here."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from trainfree.signals import quiet_interrupts

    quiet_interrupts()
    try:
        from typer.main import get_command

        from trainfree.cli import app

        command = get_command(app)  # what ``app()`` builds first: a stop there is one line too
    except KeyboardInterrupt as exc:
        from trainfree.errors import Terminated

        sys.stderr.write(f"stopped by {'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'}\n")
        sys.stderr.flush()
        os._exit(143 if isinstance(exc, Terminated) else 130)
    command()


if __name__ == "__main__":
    main()
