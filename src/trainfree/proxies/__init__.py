"""Zero-cost proxies: one file per family, each proxy registered with ``@measure``.

A proxy is a function ``fn(space, config, ctx) -> float`` where a higher score must mean a
better (predicted) model; proxies whose natural statistic is lower-is-better negate it. The
decorator declares what the proxy needs, so that the harness knows whether to build the
model, feed data or run backward passes:

    @measure("decoder_params", needs_model=False)
    def decoder_params(space, config, ctx):
        return float(space.param_counts(config).decoder)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from trainfree.registry import Registry


@dataclass
class ProxyContext:
    """What the harness hands a proxy: the seed, the input shape, and a lazily built model."""

    seed: int = 0
    batch_size: int = 1
    seq_len: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    _model: torch.nn.Module | None = None

    def model(self, space: Any, config: Any) -> torch.nn.Module:
        if self._model is None:
            self._model = space.build(config, seed=self.seed)
        return self._model


ProxyFn = Callable[[Any, Any, ProxyContext], float]


@dataclass(frozen=True)
class Proxy:
    """A registered proxy and its declared needs."""

    name: str
    fn: ProxyFn
    needs_model: bool
    needs_data: bool
    needs_grad: bool
    description: str

    def __call__(self, space: Any, config: Any, ctx: ProxyContext | None = None) -> float:
        return float(self.fn(space, config, ctx or ProxyContext()))


PROXIES: Registry[Proxy] = Registry("proxy", "trainfree.proxies")


def measure(
    name: str, *, needs_model: bool = True, needs_data: bool = False, needs_grad: bool = False
) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn`` as proxy ``name``; the first docstring line becomes its description."""

    def wrap(fn: ProxyFn) -> ProxyFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        PROXIES.register(name, Proxy(name, fn, needs_model, needs_data, needs_grad, doc[0] if doc else ""))
        return fn

    return wrap


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)


def list_proxies() -> list[str]:
    return PROXIES.names()


__all__ = ["PROXIES", "Proxy", "ProxyContext", "get_proxy", "list_proxies", "measure"]
