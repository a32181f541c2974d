"""Hardware-aware multi-objective search: NSGA-II (pymoo) over any registered space.

``SearchRun.open(out, SearchSettings(space="gpt2"))`` then ``.run()``; the same call on the
same folder (or ``SearchRun.open(out)``) continues a killed run. See docs/search.md.

The names below are imported when first asked for: a run imports torch and pymoo, which the
command line's ``--help`` (it lists the algorithms of :mod:`.algorithms`) must not.
"""

from __future__ import annotations

from trainfree._lazy import lazy_attributes

_LAZY = {
    "Evaluation": "trainfree.search.evaluation",
    "SearchProgress": "trainfree.search.run",
    "SearchResult": "trainfree.search.run",
    "SearchRun": "trainfree.search.run",
    "Budget": "trainfree.search.settings",
    "SearchSettings": "trainfree.search.settings",
    "parse_budget": "trainfree.search.settings",
    "RunDirError": "trainfree.search.state",
}


__getattr__ = lazy_attributes("trainfree.search", _LAZY)


__all__ = sorted(_LAZY)
