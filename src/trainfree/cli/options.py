"""Options that several commands share, declared once: their help, their panel in ``--help``
(what a command searches or scores, how it measures, where it runs) and the search's
measurement defaults.

Nothing here imports torch, numpy or the space and proxy registries: ``trainfree search
--help`` reads these declarations and must start in well under a second. The lists of
backends, objectives and algorithms come from their registries, which import none of those,
so that a new one is named in the help by its own declaration.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

#: the help's option panels
SEARCH, MEASUREMENT, SCALE_OUT = "Search", "Measurement", "Scale-out (Ray)"

#: the search's measurement defaults and frontier resolution (percent), written out so that
#: the help needs no import of the library; they are :data:`trainfree.search.settings.SEARCH_HARDWARE`
#: and ``SearchSettings.resolution`` (tests/test_cli_start.py holds them equal)
SEARCH_WARMUP, SEARCH_REPEATS = 1, 3
SEARCH_RESOLUTION_PCT = 5.0


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def backend_help() -> str:
    """``torch (PyTorch), onnx (ONNX Runtime) or llamacpp (llama.cpp)``, from the registry."""
    from trainfree.hardware.settings import backends

    return _either([f"{b.name} ({b.title})" for b in backends()])


def quantize_help() -> str:
    """The weight formats of every backend: ``none (float32), int8 (torch); f16, ... (llamacpp)``."""
    from trainfree.hardware.settings import backends

    formats = [f"{', '.join(q for q in b.quantize if q != 'none')} ({b.name})" for b in backends()]
    return "weights: none (float32), " + "; ".join(f for f in formats if not f.startswith(" "))


def objectives_help() -> str:
    """The registered objectives, forward-pass costs first, then the generation costs."""
    from trainfree.objectives import OBJECTIVES, generation_names

    generation = generation_names()
    forward = [name for name in OBJECTIVES if name not in generation]
    return f"costs to minimise: {', '.join(forward)}; {', '.join(generation)}"


def algorithm_help() -> str:
    from trainfree.search.algorithms import algorithm_help as listed

    return listed()


def opt(help: str, panel: str = SEARCH, *names: str, **kw: Any) -> Any:
    """A ``typer.Option`` in ``panel`` (a help line short enough for 80 columns)."""
    return typer.Option(*names, help=help, rich_help_panel=panel, **kw)


ExecutorOpt = Annotated[
    str | None,
    typer.Option(help="local (default), ray (a local Ray) or ray://HOST:PORT", rich_help_panel=SCALE_OUT),
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="join the Ray cluster at HOST:PORT", rich_help_panel=SCALE_OUT)
]
MeasureOnOpt = Annotated[
    str | None,
    typer.Option(help="measure on the Ray nodes with this resource (pi4)", rich_help_panel=SCALE_OUT),
]
BackendOpt = Annotated[
    str,
    typer.Option(help=backend_help(), rich_help_panel=MEASUREMENT),
]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda", rich_help_panel=MEASUREMENT)]
BatchOpt = Annotated[
    int, typer.Option(min=1, help="batch size of the timed pass", rich_help_panel=MEASUREMENT)
]
SeqOpt = Annotated[
    int, typer.Option(min=1, help="tokens of the timed forward pass", rich_help_panel=MEASUREMENT)
]
ThreadsOpt = Annotated[
    int, typer.Option(min=1, help="CPU threads of the timed pass", rich_help_panel=MEASUREMENT)
]
WarmupOpt = Annotated[int, typer.Option(min=0, help="untimed warm-up runs", rich_help_panel=MEASUREMENT)]
RepeatsOpt = Annotated[
    int, typer.Option(min=1, help="timed runs (the median is shown)", rich_help_panel=MEASUREMENT)
]
PromptOpt = Annotated[
    int, typer.Option(min=1, help="generation: prompt tokens (prefill)", rich_help_panel=MEASUREMENT)
]
ContextOpt = Annotated[
    int, typer.Option(min=2, help="generation: context of decode and memory", rich_help_panel=MEASUREMENT)
]
NewTokensOpt = Annotated[
    int, typer.Option(min=1, help="generation: tokens per timed decode run", rich_help_panel=MEASUREMENT)
]
QuantizeOpt = Annotated[
    str,
    typer.Option(
        help=quantize_help(),
        rich_help_panel=MEASUREMENT,
    ),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
]
