"""Names a package imports when first asked for (a module ``__getattr__``, PEP 562): the root
package, :mod:`trainfree.search` and :mod:`trainfree.hardware` export names whose modules
import torch or pymoo, which ``trainfree --version`` and ``--help`` must not."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` (a module's
    dotted name) the first time ``name`` is asked for."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
