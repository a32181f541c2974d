"""The ``export`` command; the work is in :mod:`trainfree.export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainfree.cli.boundary import err_console
from trainfree.errors import TrainfreeError


def export(
    out: Annotated[Path, typer.Option(help="folder to write (refused if not empty, unless --force)")],
    space: Annotated[str | None, typer.Option(help="space of --config (default: the file's own)")] = None,
    config: Annotated[
        Path | None, typer.Option(dir_okay=False, help="config JSON file (bare, or {space, config})")
    ] = None,
    run: Annotated[Path | None, typer.Option(help="search run directory (reads its frontier)")] = None,
    pick: Annotated[str | None, typer.Option(help="with --run: frontier row number, or all")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="hf (transformers folder), onnx, or gguf (llama.cpp; llama space)")
    ] = "hf",
    quantize: Annotated[
        str | None, typer.Option(help="--format gguf: f32, f16 (default), q8_0 or q4_k_m (llama.cpp)")
    ] = None,
    as_: Annotated[
        str, typer.Option("--as", help="trainfree (any config) or gpt2 (stock GPT2LMHeadModel)")
    ] = "trainfree",
    seed: Annotated[
        int | None, typer.Option(help="weights of space.build(config, seed); default 0, or the run's seed")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty --out")] = False,
) -> None:
    """Write an architecture as a Hugging Face transformers model folder, ONNX, or GGUF."""
    from trainfree.export import export_config, export_run
    from trainfree.spaces.configfile import load_config

    if (config is None) == (run is None):
        raise TrainfreeError("give either --config FILE (with --space) or --run RUN_DIR --pick N|all")
    if run is not None:
        if pick is None:
            raise TrainfreeError("--run needs --pick N (a frontier row) or --pick all")
        results = export_run(run, pick, out, fmt=fmt, as_=as_, force=force, seed=seed, quantize=quantize)
    else:
        sp, cfg = load_config(config, space)
        results = [
            export_config(
                *(sp, cfg, out),
                fmt=fmt,
                as_=as_,
                force=force,
                seed=seed or 0,
                inputs=[config],
                quantize=quantize,
            )
        ]
    for r in results:
        err_console.print(
            f"wrote {r.out} ({r.model_type}, {r.params:,} parameters, {r.seconds:.1f} s; "
            + (r.detail if r.detail else f"max abs diff to trainfree {r.max_abs_diff:.1e}")
            + ")",
            highlight=False,
        )
