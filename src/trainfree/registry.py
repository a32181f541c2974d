"""A tiny name -> object registry, the extension point for spaces and proxies.

Modelled on timm's model registry: a module registers its objects with a decorator at import
time, and ``discover`` imports every module of a package so that dropping a new file into
``spaces/`` or ``proxies/`` is enough for the CLI and the benchmark harness to see it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects; lookups of unknown names list the known ones."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's own entry, once the test is done); absent is fine."""
        self._items.pop(name, None)

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def discover(self) -> None:
        """Import every module of the package once, so that their decorators run."""
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str) -> T:
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(unknown(self.kind, name, sorted(self._items))) from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items


def suggest(name: str, known: list[str]) -> str:
    """``"did you mean gpt2?"`` for a typo of a known name, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), known, n=2, cutoff=0.6)
    return f"did you mean {' or '.join(close)}?" if close else ""


def unknown(kind: str, name: str, known: list[str]) -> str:
    """``unknown space 'gtp2'; did you mean gpt2? known: ...``: the message for a name not
    registered, with the closest known names (a typo) first."""
    hint = suggest(name, known)
    return f"unknown {kind} '{name}'; {hint + ' ' if hint else ''}known: {', '.join(known)}"
