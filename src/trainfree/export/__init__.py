"""Export a searched architecture as a Hugging Face ``transformers`` model or as ONNX.

``export_config`` / ``export_run`` are the library entry points of ``trainfree export``.
They need the optional extra ``trainfree[hf]`` for the Hugging Face format; this package
imports without it. ``import trainfree.export.hf_model`` registers the model classes with
``AutoConfig`` and ``AutoModel*``.
"""

from trainfree.export.export import AS_CHOICES, FORMATS, ExportResult, export_config
from trainfree.export.from_run import export_run
from trainfree.spaces.configfile import read_config_file, resolve_config

__all__ = [
    "AS_CHOICES",
    "FORMATS",
    "ExportResult",
    "export_config",
    "export_run",
    "read_config_file",
    "resolve_config",
]
