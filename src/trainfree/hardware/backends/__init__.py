"""The hardware backends: one module per runtime that measures a model, one
:func:`~trainfree.hardware.settings.register_backend` declaration each (torch, onnx,
llamacpp). A module dropped here is a new ``--backend``; modules whose name starts with ``_``
are shared helpers, not backends. See :mod:`trainfree.hardware.settings`.
"""
