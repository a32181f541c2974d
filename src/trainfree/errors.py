"""Exceptions with messages that tell the user exactly what to fix."""

from __future__ import annotations

from typing import Any


class TrainfreeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(TrainfreeError, ValueError):
    """An architecture config (or a value set) has a field that is missing or wrong.

    The message always names the field, the value found and what was expected, so that a
    user editing a JSON file by hand knows which line to change.
    """

    def __init__(self, field: str, value: Any, expected: str, where: str | None = None) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}field '{field}' is {value!r}; expected {expected}")


class BenchmarkDataError(TrainfreeError, ValueError):
    """A benchmark file is missing, malformed or partial (message names the file and entry)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is as Ctrl-C is (:mod:`trainfree.signals`), so the
    same clean-up runs; the command line ends with exit code 143 instead of 130."""
