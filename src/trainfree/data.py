"""Where the benchmark data lives: ``$TRAINFREE_DATA`` or ``../shared/benchmarks``.

The data is never shipped with the package (its licence asks for attribution, and users keep
their own copy); tests and benchmark scripts find it through this one function.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TRAINFREE_DATA"


def data_root() -> Path:
    """The benchmark folder: ``$TRAINFREE_DATA`` if set, else ``shared/benchmarks`` next to the repo."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    return (repo.parent / "shared" / "benchmarks").resolve()
