"""How ``--help`` looks at 80 columns: short value names, and docstrings the terminal wraps."""

from __future__ import annotations

import inspect
from typing import Any

#: the value a help line shows after an option, by click type name (typer would show
#: ``<int range>`` and, for a flag, ``<bool>``: a wide column of little use at 80 columns)
METAVARS = {"int": "N", "float": "X", "Path": "PATH"}


def _bare_type(param: Any) -> str:
    try:
        return str(param.bare_type())
    except (AttributeError, TypeError, AssertionError):  # another typer, a click parameter
        return str(getattr(getattr(param, "type", None), "name", ""))


def short_metavars(command: Any) -> None:
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


def flowing(text: str | None) -> str | None:
    """A docstring as help that the terminal wraps: typer's rich mode keeps the source's line
    breaks after the first paragraph, which cut sentences in two at 80 columns. Paragraphs
    (blank-line separated) stay; a paragraph that starts with ``\\b`` keeps its lines."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)
