"""Zero-cost proxies: one file per family, each proxy registered with ``@measure``.

A proxy is a function ``fn(space, config, ctx) -> float`` where a higher score must mean a
better (predicted) model; proxies whose natural statistic is lower-is-better negate it. A
*balanced* proxy (``balanced=True``) returns instead a dict of sub-module log-capacities that
``proxies.balance`` combines with a weight ``alpha`` chosen over a population. The decorator
declares what the proxy needs, so that the harness knows whether to build the model, feed
data or run backward passes:

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
    """What the harness hands a proxy: the seed, the input shape, options and the model.

    The model is built lazily, once, by ``model()``; ``fresh_init`` then records that its
    weights are the space's own random initialisation (proxies may exploit that, e.g. the
    spectral cache of ``proxies.spectral``). Pass ``given_model`` to score a module you
    already have (pre-trained weights, say): it is used as is and ``fresh_init`` is False.
    """

    seed: int = 0
    batch_size: int | None = None  # None: each data-dependent proxy's documented default
    seq_len: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    given_model: torch.nn.Module | None = None
    _built: torch.nn.Module | None = None

    def model(self, space: Any, config: Any) -> torch.nn.Module:
        if self.given_model is not None:
            return self.given_model
        if self._built is None:
            self._built = space.build(config, seed=self.seed)
        return self._built

    @property
    def fresh_init(self) -> bool:
        return self.given_model is None


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
    balanced: bool = False
    #: bumped when the proxy's values change for a reason its source file does not show
    #: (part of the score cache key)
    version: int = 1

    def __call__(self, space: Any, config: Any, ctx: ProxyContext | None = None) -> float:
        """The score of one architecture. A balanced proxy uses ``ctx.options["balance"]``
        (a :class:`~trainfree.proxies.balance.Balance`), by default the space's label-free
        default (``balance.choose("heuristic", space=space, proxy=self.name)``)."""
        ctx = ctx or ProxyContext()
        if not self.balanced:
            return float(self.fn(space, config, ctx))
        from trainfree.proxies.balance import choose, combine

        balance = ctx.options.get("balance") or choose("heuristic", space=space, proxy=self.name)
        return float(combine(self.components(space, config, ctx), balance))

    def components(self, space: Any, config: Any, ctx: ProxyContext | None = None) -> dict[str, float]:
        """The sub-module log-capacities of a balanced proxy."""
        if not self.balanced:
            raise TypeError(f"proxy '{self.name}' is not a balanced proxy")
        return dict(self.fn(space, config, ctx or ProxyContext()))


PROXIES: Registry[Proxy] = Registry("proxy", "trainfree.proxies")


def measure(
    name: str,
    *,
    needs_model: bool = True,
    needs_data: bool = False,
    needs_grad: bool = False,
    balanced: bool = False,
    version: int = 1,
) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn`` as proxy ``name``; the first docstring line becomes its description."""

    def wrap(fn: ProxyFn) -> ProxyFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        description = doc[0] if doc else ""
        PROXIES.register(
            name, Proxy(name, fn, needs_model, needs_data, needs_grad, description, balanced, version)
        )
        return fn

    return wrap


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)


def list_proxies() -> list[str]:
    return PROXIES.names()


__all__ = ["PROXIES", "Proxy", "ProxyContext", "get_proxy", "list_proxies", "measure"]
