"""``PreTrainedModel`` wrappers around trainfree's own modules, with the heads that fit.

- ``gpt2`` / ``transxl``: :class:`TrainfreeGPT2ForCausalLM`, :class:`TrainfreeTransXLForCausalLM`
  (in ``hf_lts.py``). The trainfree model *is* the language model (its adaptive softmax is the
  head), so the wrapper holds it as ``model`` and adds the Hugging Face conventions.
- ``flexibert`` / ``flexibert-published``: the bare encoder (:class:`TrainfreeFlexiBertModel`,
  what ``space.inference`` returns), an ELECTRA-style masked-LM head whose decoder is tied to
  the word embeddings, and a sequence-classification head on the first token (in
  ``hf_flexibert.py``). The heads are new, randomly initialised modules (the benchmark has none).

The wrappers never re-implement a layer: the modules are trainfree's. For a folder that loads
without trainfree, ``trainfree.export.remote`` copies the source of these classes and of
everything they use into one self-contained ``modeling_trainfree.py``.

This module gathers the families (each family module declares itself in
``trainfree.export.families``; importing them here completes :data:`FAMILIES`) and, on import,
registers the classes with ``AutoConfig`` / ``AutoModel*``.
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from trainfree.export.families import FAMILIES, auto_map
from trainfree.export.hf_common import write_modeling_file
from trainfree.export.hf_lts import (
    TrainfreeGPT2ForCausalLM,
    TrainfreeLTSForCausalLM,
    TrainfreeTransXLForCausalLM,
    TransXLCausalLMOutput,
    lts_config,
    lts_tied_weights,
)

# isort: split
# the LTS families first: FAMILIES keeps the declaration order (gpt2, transxl, flexibert)
from trainfree.export.hf_flexibert import (
    FlexiBertClassificationHead,
    FlexiBertMaskedLMHead,
    TrainfreeFlexiBertForMaskedLM,
    TrainfreeFlexiBertForSequenceClassification,
    TrainfreeFlexiBertModel,
    TrainfreeFlexiBertPreTrainedModel,
    flexibert_config,
)

__all__ = [
    "FAMILIES",
    "FlexiBertClassificationHead",
    "FlexiBertMaskedLMHead",
    "TrainfreeFlexiBertForMaskedLM",
    "TrainfreeFlexiBertForSequenceClassification",
    "TrainfreeFlexiBertModel",
    "TrainfreeFlexiBertPreTrainedModel",
    "TrainfreeGPT2ForCausalLM",
    "TrainfreeLTSForCausalLM",
    "TrainfreeTransXLForCausalLM",
    "TransXLCausalLMOutput",
    "auto_map",
    "flexibert_config",
    "lts_config",
    "lts_tied_weights",
    "register",
    "write_modeling_file",
]

_AUTO = {
    "AutoModel": AutoModel,
    "AutoModelForCausalLM": AutoModelForCausalLM,
    "AutoModelForMaskedLM": AutoModelForMaskedLM,
    "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
}


def register() -> None:
    """Register every family with ``AutoConfig`` and its ``AutoModel*`` classes (idempotent),
    so that an exported folder loads without ``trust_remote_code`` where trainfree is installed."""
    for model_type, (config_class, models) in FAMILIES.items():
        AutoConfig.register(model_type, config_class, exist_ok=True)
        for auto, cls in models.items():
            _AUTO[auto].register(config_class, cls, exist_ok=True)


register()
