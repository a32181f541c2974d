"""What the ``PreTrainedModel`` wrappers of every family share: regenerating the folder's
self-contained modeling file when they are saved.

Copied, with the model classes, into every exported ``modeling_trainfree.py`` (see
``trainfree.export.remote``): it may only use ``torch``, ``transformers`` and the standard
library at module level.
"""

from __future__ import annotations

import os


def write_modeling_file(folder: str | os.PathLike, model_type: str) -> None:
    """Keep a folder saved by trainfree's own classes loadable with ``trust_remote_code``.

    transformers copies the module of a remote-code class itself; trainfree's classes live in
    a package it cannot copy, so their ``save_pretrained`` regenerates the self-contained file.
    Without trainfree (this code running from the generated file) there is nothing to do."""
    try:
        from trainfree.export.remote import write_remote_code
    except ImportError:
        return
    write_remote_code(folder, model_type)
