"""The ``trainfree`` command line: a package with one module per command (or group of
listing commands), registered on one typer app in :mod:`trainfree.cli.commands`.

It parses options and prints; the work is the library's, imported by each command when it
runs, so ``trainfree --version`` and ``--help`` start without torch. Every error a command
raises on purpose becomes one line and exit 2 in :mod:`trainfree.cli.boundary`.
"""

from trainfree.cli.boundary import console, err_console
from trainfree.cli.commands import app

__all__ = ["app", "console", "err_console"]
