"""trainfree: training-free Transformer architecture search.

The public API in one place::

    from trainfree import get_space, get_proxy
    space = get_space("gpt2")
    cfg = space.sample(numpy.random.default_rng(0))
    model = space.build(cfg)
    print(space.param_counts(cfg).decoder)
"""

from trainfree.errors import BenchmarkDataError, ConfigError, TrainfreeError
from trainfree.proxies import get_proxy, list_proxies
from trainfree.spaces import get_space, list_spaces

__all__ = [
    "BenchmarkDataError",
    "ConfigError",
    "TrainfreeError",
    "get_proxy",
    "get_space",
    "list_proxies",
    "list_spaces",
]
__version__ = "0.1.0"
