"""The ``report`` command (registered on :data:`trainfree.cli.app`): ``report.html`` of a run
directory, also one written by an older version; the work is in
:mod:`trainfree.search.run_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainfree.cli.listing import _fail, app, err_console
from trainfree.errors import TrainfreeError


@app.command()
def report(
    run: Annotated[Path, typer.Option(help="search run directory (writes RUN/report.html)")],
) -> None:
    """Write report.html of a search run: interactive frontier plots, export commands."""
    from trainfree.htmlreport import plotly_available
    from trainfree.search.run_report import write_report

    if not plotly_available():
        raise _fail("report.html needs plotly: pip install plotly")
    try:
        written = write_report(run)
    except (OSError, TrainfreeError) as exc:
        raise _fail(str(exc)) from None
    err_console.print(
        f"wrote {written.path} ({written.bytes / 1e6:.1f} MB, self-contained: opens offline)",
        highlight=False,
    )
