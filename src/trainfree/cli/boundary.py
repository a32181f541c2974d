"""The command line's checks and its one error handler, kept apart from the commands.

:class:`_Commands` is the one place where an error raised on purpose becomes one line and exit
code 2; the ``_check_*`` helpers refuse, before any work starts, outputs that could not be
written and benchmarks too small to rank.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from trainfree.errors import Terminated, TrainfreeError
from trainfree.signals import quiet_interrupts, restore_sigterm

try:  # typer vendors its own copy of click (typer >= 0.22); its errors are not click's
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer
    from click import UsageError


console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    """Print ``message`` as one line (never wrapped: scripts grep it) and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A warning as one line (``warning: ...``), not Python's two-line file:line form."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


class _Commands(TyperGroup):
    """The one place where an error this package raises on purpose (a bad input, a file that
    could not be written: :class:`~trainfree.io.WriteError`) or a bad option value becomes
    one line and exit code 2, whichever command and however deep it was raised; anything
    else is a bug and keeps its traceback. It also lets the terminal wrap each command's help
    (:func:`_flowing`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            command.help = _flowing(command.help)
            _short_metavars(command)

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
            raise _fail(f"{exc.format_message()} (see `{where} --help`)") from None
        except TrainfreeError as exc:
            raise _fail(str(exc)) from None
        except RecursionError:
            raise _fail("an input is nested too deeply to be read (a JSON or YAML structure?)") from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated): whatever ran cleaned up
            raise stopped(exc) from None
        except OSError as exc:  # a file of the user's that cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            raise _fail(f"{where}{exc.strerror or exc}") from None
        finally:
            restore_sigterm(previous)


def stopped(exc: BaseException) -> typer.Exit:
    """The one line of a command stopped by Ctrl-C (exit 130) or SIGTERM (exit 143)."""
    how, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
    with contextlib.suppress(Exception):
        err_console.print(f"stopped by {how}; nothing half-written was left", highlight=False)
    return typer.Exit(code=code)


#: the value a help line shows after an option, by click type name (typer would show
#: ``<int range>`` and, for a flag, ``<bool>``: a wide column of little use at 80 columns)
METAVARS = {"int": "N", "float": "X", "Path": "PATH"}


def _bare_type(param: Any) -> str:
    try:
        return str(param.bare_type())
    except (AttributeError, TypeError, AssertionError):  # another typer, a click parameter
        return str(getattr(getattr(param, "type", None), "name", ""))


def _short_metavars(command: Any) -> None:
    """Every option of ``command`` shown with a short value name (N, X, PATH, TEXT) and a
    flag (``--resume``, ``--help``) with none: a flag takes no value."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = METAVARS.get(_bare_type(param), "TEXT")
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


def _flowing(text: str | None) -> str | None:
    """A docstring as help that the terminal wraps: typer's rich mode keeps the source's line
    breaks after the first paragraph, which cut sentences in two at 80 columns. Paragraphs
    (blank-line separated) stay; a paragraph that starts with ``\\b`` keeps its lines."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)


def _check_writable(path: Path, option: str, folder: bool) -> None:
    """Refuse ``path`` (a file, or a folder when ``folder``) if it cannot be written: the
    wrong kind of thing is there, or the nearest existing folder above it is not writable."""
    if path.exists() and path.is_dir() != folder:
        kind, wanted = ("a file", "a folder") if folder else ("a folder", "a file name")
        raise _fail(f"{option} {path} is {kind}; expected {wanted}")
    place = path if folder and path.is_dir() else path.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise _fail(f"{option} {path}: {place} is a file, not a folder")
    try:  # the only sure test: create (and remove) a file where the output will go
        fd, probe = tempfile.mkstemp(prefix=".trainfree-probe-", dir=place)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _fail(f"{option} {path}: {place} is not writable ({exc.strerror or exc})") from None


def _check_bench_outputs(
    json_out: Path | None, report: Path | None, cache: Path | None, default_cache: Path | None
) -> None:
    """Every place ``bench`` writes, checked before any scoring starts (a run of hours must
    not end in an error about its output file)."""
    if json_out is not None:
        _check_writable(json_out, "--json", folder=False)
    if report is not None:
        _check_writable(report, "--report", folder=True)
    if cache is not None:
        _check_writable(cache, "--cache", folder=True)
    if default_cache is not None:
        _check_writable(default_cache, "the score cache (pass --cache DIR or --no-cache)", folder=True)


def _check_bench_size(benchmark: Any, strategy: Any) -> None:
    """Enough usable entries for a rank correlation, and for ``fit:K`` a K that leaves at
    least three to evaluate on."""
    n = len(benchmark)
    if n < 3:
        raise _fail(
            f"{benchmark.path}: only {n} usable entr{'y' if n == 1 else 'ies'} (a rank correlation needs "
            f"at least 3; {len(benchmark.skipped)} skipped for want of a '{benchmark.target}' value)"
        )
    if strategy.kind == "fit" and not 5 <= int(strategy.k or 50) <= n - 3:
        k = int(strategy.k or 50)
        if n < 8:
            raise _fail(
                f"--alpha fit:{k}: this benchmark has {n} usable entries; fit:K needs at least 8 "
                "(K >= 5 to fit on, 3 more to evaluate on)"
            )
        raise _fail(f"--alpha fit:{k}: K must be between 5 and {n - 3} for {n} usable entries")
