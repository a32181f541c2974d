"""Options that several commands share, declared once: their help, their panel in ``--help``
(what a command searches or scores, how it measures, where it runs) and the search's
measurement defaults.

Nothing here imports torch or the registries: ``trainfree search --help`` reads these
declarations and must start in well under a second.
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
    typer.Option(help="torch (PyTorch), onnx (ONNX Runtime) or llamacpp (GGUF)", rich_help_panel=MEASUREMENT),
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
        help="weights: none (float32), int8 (torch); f16, q8_0, q4_k_m (llamacpp)",
        rich_help_panel=MEASUREMENT,
    ),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="narrow a value set of the space: NAME=JSON-list")
]
