"""Search spaces: one file per space, registered with ``@register_space``.

``get_space(name, **value_sets)`` returns a fresh space instance. The contract a space
fulfils is ``base.SearchSpace`` (with ``BenchmarkSource`` for its benchmark); the one its
models fulfil for proxies is ``protocol.ProxyModel``.
"""

from __future__ import annotations

from typing import Any

from trainfree.registry import Registry
from trainfree.spaces.base import BenchmarkSource, Gene, ParamCounts, SearchSpace, module_groups
from trainfree.spaces.protocol import ProxyModel

SPACES: Registry[type[SearchSpace]] = Registry("search space", "trainfree.spaces")


def register_space(name: str):
    """Class decorator: make a :class:`SearchSpace` subclass available under ``name``."""

    def wrap(cls: type[SearchSpace]) -> type[SearchSpace]:
        cls.name = name
        return SPACES.register(name, cls)

    return wrap


def get_space(name: str, **values: Any) -> SearchSpace:
    return SPACES.get(name)(**values)


def list_spaces() -> list[str]:
    return SPACES.names()


__all__ = [
    "BenchmarkSource",
    "Gene",
    "ParamCounts",
    "ProxyModel",
    "SearchSpace",
    "get_space",
    "list_spaces",
    "module_groups",
    "register_space",
]
