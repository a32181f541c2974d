"""The ``trainfree`` command line (a package: one module per command)."""

from trainfree.cli.listing import app, console, err_console

__all__ = ["app", "console", "err_console"]
