"""The command line's one error boundary, and the consoles every command prints on.

:class:`CommandGroup` is the one place where an error raised on purpose becomes one line and
exit code 2 (:func:`fail`), a Ctrl-C exit 130 and a SIGTERM exit 143 (:func:`stopped`),
whichever command and however deep it was raised. A command therefore lets a
:class:`~trainfree.errors.TrainfreeError` through; it catches only what it words differently.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from trainfree.cli.helpformat import flowing, short_metavars
from trainfree.errors import Terminated, TrainfreeError
from trainfree.signals import quiet_interrupts, restore_sigterm

try:  # typer vendors its own copy of click (typer >= 0.22); its errors are not click's
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer
    from click import UsageError


console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one line (never wrapped: scripts grep it) and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A warning as one line (``warning: ...``), not Python's two-line file:line form."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


class CommandGroup(TyperGroup):
    """The one place where an error this package raises on purpose (a bad input, a file that
    could not be written: :class:`~trainfree.io.WriteError`) or a bad option value becomes
    one line and exit code 2, whichever command and however deep it was raised; anything
    else is a bug and keeps its traceback. It also lets the terminal wrap each command's help
    (:func:`~trainfree.cli.helpformat.flowing`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            command.help = flowing(command.help)
            short_metavars(command)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parsing the arguments: a stop here would be typer's silent exit 130."""
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise stopped(exc) from None

    def invoke(self, ctx: typer.Context) -> Any:
        warnings.showwarning = _show_warning
        previous = quiet_interrupts()
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # a bad option value: one line too, not a panel
            where = exc.ctx.command_path if exc.ctx else "trainfree"
            raise fail(f"{exc.format_message()} (see `{where} --help`)") from None
        except TrainfreeError as exc:
            raise fail(str(exc)) from None
        except RecursionError:
            raise fail("an input is nested too deeply to be read (a JSON or YAML structure?)") from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated): whatever ran cleaned up
            raise stopped(exc) from None
        except OSError as exc:  # a file of the user's that cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}") from None
        finally:
            restore_sigterm(previous)


def stopped(exc: BaseException) -> typer.Exit:
    """The one line of a command stopped by Ctrl-C (exit 130) or SIGTERM (exit 143)."""
    how, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
    with contextlib.suppress(Exception):
        err_console.print(f"stopped by {how}; nothing half-written was left", highlight=False)
    return typer.Exit(code=code)
