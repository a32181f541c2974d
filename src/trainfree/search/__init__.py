"""Hardware-aware multi-objective search: NSGA-II (pymoo) over any registered space.

``SearchRun.open(out, SearchSettings(space="gpt2"))`` then ``.run()``; the same call on the
same folder (or ``SearchRun.open(out)``) continues a killed run. See docs/search.md.
"""

from trainfree.search.evaluation import Evaluation
from trainfree.search.run import SearchProgress, SearchResult, SearchRun
from trainfree.search.settings import Budget, SearchSettings, parse_budget
from trainfree.search.state import RunDirError

__all__ = [
    "Budget",
    "Evaluation",
    "RunDirError",
    "SearchProgress",
    "SearchResult",
    "SearchRun",
    "SearchSettings",
    "parse_budget",
]
