"""``python -m trainfree.cli``: the same command line as ``python -m trainfree``."""

from trainfree.cli import app

app()
