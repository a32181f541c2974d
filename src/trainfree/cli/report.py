"""The ``report`` command: ``report.html`` of a run directory, also one written by an older
version; the work is in :mod:`trainfree.search.run_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainfree.cli.boundary import err_console, fail


def report(
    run: Annotated[Path, typer.Option(help="search run directory (writes RUN/report.html)")],
) -> None:
    """Write report.html of a search run: interactive frontier plots, export commands."""
    from trainfree.htmlreport import plotly_available
    from trainfree.search.run_report import write_report

    if not plotly_available():
        raise fail("report.html needs plotly: pip install plotly")
    try:
        written = write_report(run)
    except OSError as exc:  # its own wording (the boundary's is 'FILE: reason'), kept as it was
        raise fail(str(exc)) from None
    err_console.print(
        f"wrote {written.path} ({written.bytes / 1e6:.1f} MB, self-contained: opens offline)",
        highlight=False,
    )
