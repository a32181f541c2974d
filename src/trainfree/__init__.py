"""trainfree: training-free Transformer architecture search.

The public API in one place::

    from trainfree import get_space, get_proxy
    space = get_space("gpt2")
    cfg = space.sample(numpy.random.default_rng(0))
    model = space.build(cfg)
    print(space.param_counts(cfg).decoder)
"""

from __future__ import annotations

from trainfree._lazy import lazy_attributes
from trainfree.errors import BenchmarkDataError, ConfigError, TrainfreeError

#: imported when first asked for: the registries import torch (a second or more), which the
#: command line must not do before it has set up its handling of Ctrl-C (``__main__``)
_LAZY = {
    "get_proxy": "trainfree.proxies",
    "list_proxies": "trainfree.proxies",
    "get_space": "trainfree.spaces",
    "list_spaces": "trainfree.spaces",
}


__getattr__ = lazy_attributes("trainfree", _LAZY)


__all__ = [
    "BenchmarkDataError",
    "ConfigError",
    "TrainfreeError",
    "get_proxy",
    "get_space",
    "list_proxies",
    "list_spaces",
]
from trainfree._version import __version__ as __version__  # noqa: E402
