"""Runtime pieces shared by the packages that score and measure: the score cache
(:mod:`.score_cache`), the worker processes, their lifetime and memory guard
(:mod:`.workers`, :mod:`._forkserver`).

A neutral package below :mod:`trainfree.proxies`, :mod:`trainfree.hardware` and
:mod:`trainfree.executors` (and so below search, bench and export, which use them too): it
imports only the base modules (``io``, ``signals``, ``_version``), never a sibling. Importing it
imports nothing heavy.
"""
