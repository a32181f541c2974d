"""Shared fixtures: the benchmark data folder (``$TRAINFREE_DATA`` or ``../shared/benchmarks``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainfree.data import data_root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"benchmark data not found at {root} (set TRAINFREE_DATA to its folder)")
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_score_cache(tmp_path_factory) -> None:
    """Keep `trainfree bench` from writing its score cache under the user's home in tests."""
    import os

    os.environ["TRAINFREE_CACHE"] = str(tmp_path_factory.mktemp("score-cache"))
