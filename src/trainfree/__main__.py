"""``python -m trainfree`` and the ``trainfree`` command: SIGTERM is made an exception before
the command line's imports, and a stop during them is one line, exit 130 (Ctrl-C) or 143
(SIGTERM), not an import traceback.

A stop during the imports ends with ``os._exit``: nothing has started that needs cleaning up,
and a Ctrl-C that landed in C code evaluating Python (pybind11's ``exec`` in torch's start-up)
leaves CPython's "unhandled Ctrl-C" flag set, which turned exit 130 into death by SIGINT (-2)
on a CI machine even though the interrupt was caught here. The command line itself imports no
torch (``--version`` and ``--help`` start at once), so a command that will run has torch and
the registries imported here first (:data:`RUN_IMPORTS`), inside this window, as before."""

from __future__ import annotations

import importlib
import os
import sys

#: what the commands that run import (torch and the libraries that start with it: the set the
#: command line imported at its top before it imported lazily), imported before the command,
#: where a stop during their start-up is still an ``os._exit`` (torch alone was not enough: a
#: Ctrl-C 3.5 s into a search, in a later import, still ended in -2)
RUN_IMPORTS = (
    "trainfree.spaces",
    "trainfree.proxies",
    "trainfree.search",
    "trainfree.executors",
    "trainfree.bench",
)

#: arguments that only print: they need none of :data:`RUN_IMPORTS`
PRINT_ONLY = frozenset({"--help", "--version"})


def runs_a_command(args: list[str]) -> bool:
    """Whether the command line will run a command (not only print its help or the version)."""
    return bool(args) and not PRINT_ONLY & set(args)


def main() -> None:
    from trainfree.signals import quiet_interrupts

    quiet_interrupts()
    try:
        from typer.main import get_command

        from trainfree.cli import app

        command = get_command(app)  # what ``app()`` builds first: a stop there is one line too
        if runs_a_command(sys.argv[1:]):
            for module in RUN_IMPORTS:
                importlib.import_module(module)
    except KeyboardInterrupt as exc:
        from trainfree.errors import Terminated

        sys.stderr.write(f"stopped by {'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'}\n")
        sys.stderr.flush()
        os._exit(143 if isinstance(exc, Terminated) else 130)
    command()


if __name__ == "__main__":
    main()
