"""The table of exportable model families: ``model_type`` -> config class and model classes.

Each family module (``hf_lts.py``, ``hf_flexibert.py``) declares its families here with
:func:`family`, once, below its classes. The table sits apart from the classes so that the
generator of the self-contained modeling file (``trainfree.export.remote``), which the classes
call when they are saved, reads it without importing the classes back (no import cycle).
``import trainfree.export.hf_model`` imports every family module, so the table is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainfree.export.hf_config import REMOTE_MODULE

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

#: model_type -> (config class, {auto class name: model class}); the first model class is
#: the one ``trainfree export`` writes (its ``architectures`` entry).
FAMILIES: dict[str, tuple[type[PretrainedConfig], dict[str, type[PreTrainedModel]]]] = {}


def family(
    model_type: str, config_class: type[PretrainedConfig], models: dict[str, type[PreTrainedModel]]
) -> None:
    """Declare a family: its ``model_type``, config class and ``{auto class name: model class}``
    (``AutoModelForCausalLM``...), the class ``trainfree export`` writes first."""
    FAMILIES[model_type] = (config_class, models)


def auto_map(model_type: str) -> dict[str, str]:
    """The ``auto_map`` of a config.json: every class, in the folder's modeling file."""
    config_class, models = FAMILIES[model_type]
    out = {"AutoConfig": f"{REMOTE_MODULE}.{config_class.__name__}"}
    out.update({auto: f"{REMOTE_MODULE}.{cls.__name__}" for auto, cls in models.items()})
    return out
