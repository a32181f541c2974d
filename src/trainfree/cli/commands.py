"""The ``trainfree`` typer app: every command registered here, in the order ``--help`` lists
them, and ``--version``.

The command modules only define functions; registering them in this one module (which imports
them, never the reverse) keeps the command line free of import cycles. Each command imports
the library it needs when it runs, so ``--version`` and ``--help`` start in well under a second.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trainfree.cli import bench, calibrate, export, listing, profile, report, search
from trainfree.cli.boundary import CommandGroup, console

HELP = "Training-free Transformer architecture search: proxies, benchmarks, search."

app = typer.Typer(cls=CommandGroup, add_completion=False, no_args_is_help=True, help=HELP)


def _show_version(value: bool) -> None:
    if value:
        from trainfree._version import __version__

        console.print(f"trainfree {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _app_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Training-free Transformer architecture search: proxies, benchmarks, search."""


#: the commands, in the order of ``trainfree --help``
COMMANDS = (
    listing.spaces,
    listing.proxies,
    listing.sample,
    listing.info,
    profile.profile,
    bench.bench,
    export.export,
    report.report,
    search.search,
    calibrate.calibrate,
)
for command in COMMANDS:
    app.command()(command)
