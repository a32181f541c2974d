"""Option values turned into the library's objects (a space, a config file, hardware
settings, an executor), each refused with one line where it cannot be: shared by the commands
that take them. The library is imported inside each function, when a command runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainfree.cli.boundary import err_console, fail
from trainfree.errors import TrainfreeError


def parse_sets(items: list[str]) -> dict[str, list]:
    """``--set NAME=JSON-list`` options as ``{name: values}``."""
    out: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            values = json.loads(text) if sep else None
        except json.JSONDecodeError:
            values = None
        if not sep or not key or not isinstance(values, list) or not values:
            raise fail(
                f"--set {item!r}: expected NAME=[v1,v2,...] with a JSON list, e.g. --set 'n_layer=[2,4,6]'"
            )
        out[key.strip()] = values
    return out


def load_space(name: str, set_values: list[str] | None = None) -> Any:
    """The space ``name`` narrowed by ``--set`` options; an unknown name is one line (the
    registry's KeyError names the known ones), a bad value set too (a ConfigError)."""
    from trainfree.spaces import get_space

    try:
        return get_space(name, **parse_sets(set_values or []))
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None


def config_file(space: str | None, path: Path) -> tuple[Any, Any]:
    """``(space, typed config)`` of a config file (bare, or naming its space), or a clear
    error naming the file and the field."""
    from trainfree.spaces.configfile import load_config

    try:
        return load_config(path, space)
    except TrainfreeError as exc:
        raise fail(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None


def hardware_settings(
    backend: str,
    device: str,
    batch_size: int,
    seq_len: int,
    threads: int,
    warmup: int,
    repeats: int,
    max_repeats: int | None = None,
    **generation: Any,
) -> Any:
    """Hardware settings from the options; ``generation``: mode, prompt_len, context,
    new_tokens, quantize (``HardwareSettings``)."""
    from trainfree.hardware import HardwareSettings
    from trainfree.hardware.settings import BACKENDS

    cpus = os.cpu_count() or 1
    if threads > cpus:
        raise fail(f"--threads {threads}: this machine has {cpus} CPUs; use at most {cpus}")
    if backend in BACKENDS.names():  # else HardwareSettings names what is expected
        chosen = BACKENDS.get(backend)
        chosen.require()
        if chosen.modes == ("generate",):  # e.g. llama.cpp measures generation only (pp and tg)
            generation["mode"] = "generate"
    return HardwareSettings(
        backend=backend,
        device=device,
        batch_size=batch_size,
        seq_len=seq_len,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        max_repeats=max_repeats,
        **generation,
    )


def make_executor(spec: str | None, address: str | None, measure_on: str | None = None) -> Any:
    """The executor the options ask for (:mod:`trainfree.executors`); its notes in yellow."""
    from rich.markup import escape

    from trainfree.executors import make_executor as make

    return make(spec, address, measure_on, notify=lambda m: err_console.print(f"[yellow]{escape(m)}[/]"))
