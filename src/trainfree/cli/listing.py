"""The commands that list and show, without measuring: ``spaces``, ``proxies``, ``sample`` and
``info``.

Spaces and proxies are discovered from their registries, so a new one appears here with no
edit to this file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from trainfree.cli.boundary import console, fail
from trainfree.cli.inputs import config_file, load_space
from trainfree.cli.options import SetOpt


def _plain(text: str) -> str:
    """Docstring text without reStructuredText markup (``x``, :role:`x`), for tables."""
    return re.sub(r"(:\w+:)?``?([^`]+)``?", r"\2", text)


def spaces() -> None:
    """List the registered search spaces, their benchmark and their value sets."""
    from trainfree.spaces import get_space, list_spaces

    for name in list_spaces():
        sp = get_space(name)
        console.print(f"[bold]{name}[/]: {type(sp).summary()}", highlight=False)
        if sp.benchmark is not None:
            b = sp.benchmark
            console.print(
                f"benchmark: {b.title}, $TRAINFREE_DATA/{b.path} (targets: {', '.join(b.targets)})",
                highlight=False,
            )
        else:
            console.print("benchmark: none (no trained models of this space are published)", highlight=False)
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("value set")
        table.add_column("values")
        for key, values in sp.describe().items():
            shown = values if len(values) <= 12 else [*values[:5], "...", *values[-3:]]
            table.add_row(key, f"{', '.join(map(str, shown))}  ({len(values)})")
        console.print(table)


def proxies() -> None:
    """List the registered proxies and what each needs."""
    from trainfree.proxies import get_proxy, list_proxies

    table = Table(title="proxies (docs/baselines.md: sources and checks)", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("what it scores")
    for name in list_proxies():
        p = get_proxy(name)
        flags = (("model", p.needs_model), ("data", p.needs_data), ("grad", p.needs_grad))
        needs = [k for k, x in flags if x]
        table.add_row(name, "+".join(needs) or "config", _plain(p.description))
    console.print(table)


def sample(
    space: Annotated[str, typer.Option(help="search space name (see `trainfree spaces`)")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of configs")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="random seed")] = 0,
    set_values: SetOpt = None,
    reference: Annotated[
        str | None, typer.Option(help="print this reference model of the space instead (e.g. SmolLM2-135M)")
    ] = None,
) -> None:
    """Print N sampled configs of a space as JSON lines (or one of its reference models)."""
    import numpy as np

    sp = load_space(space, set_values)
    if reference is not None:
        refs = sp.references() if hasattr(sp, "references") else {}
        if reference not in refs:
            raise fail(
                f"--reference {reference!r}: space {space} has {', '.join(refs) or 'no reference models'}"
            )
        sys.stdout.write(sp.config_to_json(refs[reference]) + "\n")
        return
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sys.stdout.write(sp.config_to_json(sp.sample(rng)) + "\n")


def info(
    space: Annotated[str | None, typer.Option(help="search space (default: the config file's)")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="config JSON file")] = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="sequence length for FLOPs (default: the model's longest)")
    ] = None,
) -> None:
    """Parameter counts by sub-module and FLOPs of one config."""
    if config is None:
        raise fail("--config FILE is required")
    sp, cfg = config_file(space, config)
    counts = sp.param_counts(cfg).as_dict()
    longest = sp.max_seq_len(cfg)
    if seq_len is not None and seq_len > longest:
        raise fail(f"--seq-len {seq_len}: the model has {longest} positions; use at most {longest}")
    length = seq_len or longest
    table = Table(title=f"{sp.name}: {config.name}")
    table.add_column("part")
    table.add_column("parameters", justify="right")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    table.add_row(f"flops @ {length} tokens", f"{sp.flops(cfg, length):,}")
    console.print(table)
