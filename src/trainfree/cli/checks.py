"""Checks made before any work starts: outputs that could not be written, and benchmarks too
small to rank, are refused with one line (exit 2) rather than at the end of a long run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from trainfree.cli.boundary import fail


def check_writable(path: Path, option: str, folder: bool) -> None:
    """Refuse ``path`` (a file, or a folder when ``folder``) if it cannot be written: the
    wrong kind of thing is there, or the nearest existing folder above it is not writable."""
    if path.exists() and path.is_dir() != folder:
        kind, wanted = ("a file", "a folder") if folder else ("a folder", "a file name")
        raise fail(f"{option} {path} is {kind}; expected {wanted}")
    place = path if folder and path.is_dir() else path.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise fail(f"{option} {path}: {place} is a file, not a folder")
    try:  # the only sure test: create (and remove) a file where the output will go
        fd, probe = tempfile.mkstemp(prefix=".trainfree-probe-", dir=place)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"{option} {path}: {place} is not writable ({exc.strerror or exc})") from None


def check_bench_outputs(
    json_out: Path | None, report: Path | None, cache: Path | None, default_cache: Path | None
) -> None:
    """Every place ``bench`` writes, checked before any scoring starts (a run of hours must
    not end in an error about its output file)."""
    if json_out is not None:
        check_writable(json_out, "--json", folder=False)
    if report is not None:
        check_writable(report, "--report", folder=True)
    if cache is not None:
        check_writable(cache, "--cache", folder=True)
    if default_cache is not None:
        check_writable(default_cache, "the score cache (pass --cache DIR or --no-cache)", folder=True)


def check_bench_size(benchmark: Any, strategy: Any) -> None:
    """Enough usable entries for a rank correlation, and for ``fit:K`` a K that leaves at
    least three to evaluate on."""
    n = len(benchmark)
    if n < 3:
        raise fail(
            f"{benchmark.path}: only {n} usable entr{'y' if n == 1 else 'ies'} (a rank correlation needs "
            f"at least 3; {len(benchmark.skipped)} skipped for want of a '{benchmark.target}' value)"
        )
    if strategy.kind == "fit" and not 5 <= int(strategy.k or 50) <= n - 3:
        k = int(strategy.k or 50)
        if n < 8:
            raise fail(
                f"--alpha fit:{k}: this benchmark has {n} usable entries; fit:K needs at least 8 "
                "(K >= 5 to fit on, 3 more to evaluate on)"
            )
        raise fail(f"--alpha fit:{k}: K must be between 5 and {n - 3} for {n} usable entries")
