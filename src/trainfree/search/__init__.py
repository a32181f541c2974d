"""Hardware-aware multi-objective search: NSGA-II (pymoo) over any registered space.

``SearchRun.create(out, SearchSettings(space="gpt2"))`` then ``.run()``; a killed run continues
with ``SearchRun.resume(out).run()``. See docs/search.md.
"""

from trainfree.search.run import SearchResult, SearchRun, SearchSettings, parse_budget

__all__ = ["SearchResult", "SearchRun", "SearchSettings", "parse_budget"]
