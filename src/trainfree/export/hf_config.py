"""Hugging Face ``PretrainedConfig`` classes for trainfree's three model families.

Each config carries the *whole* trainfree config (``trainfree_config``, the dict that
``space.config_to_dict`` writes) and the name of the space it came from, so that a model
folder says exactly which architecture it holds and ``trainfree`` can rebuild it. The
standard attributes (``vocab_size``, ``hidden_size``, ``num_hidden_layers``,
``max_position_embeddings``) are derived from it so that generic tools (Trainer, pipelines,
model cards) find what they expect.

``trainfree_build_config`` is the config whose dimensions are built; it equals
``trainfree_config`` except for ``flexibert-published``, whose models are built with the
library defaults the authors' notebook used (hidden size 256, FFN 1024).

This module is also copied, with the model code, into every exported folder (see
``trainfree.export.remote``): it must only use ``transformers``, ``torch`` and the standard
library at run time.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

#: the modeling file written beside the weights (``auto_map`` points into it)
REMOTE_MODULE = "modeling_trainfree"


class TrainfreeLTSConfig(PretrainedConfig):
    """Shared part of the two LiteTransformerSearch families (GPT-2, Transformer-XL).

    Their adaptive softmax always reuses the embedding tables (archai's ``tie_weight``), so
    ``tie_word_embeddings`` is true; ``use_cache`` is false (the models keep no KV cache).
    """

    trainfree_space: str = ""
    trainfree_config: dict[str, Any] | None = None
    trainfree_build_config: dict[str, Any] | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    num_hidden_layers: int | None = None
    max_position_embeddings: int | None = None
    tie_word_embeddings: bool = True
    use_cache: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        if self.trainfree_build_config is None:
            self.trainfree_build_config = self.trainfree_config
        c = self.trainfree_build_config
        if c is not None:
            self.vocab_size = c["n_token"]
            self.hidden_size = c["d_model"]
            self.num_hidden_layers = c["n_layer"]
            self.max_position_embeddings = c["tgt_len"]
        self.is_decoder = True
        super().__post_init__(**kwargs)


class TrainfreeGPT2Config(TrainfreeLTSConfig):
    """LTS heterogeneous GPT-2 (space ``gpt2``): ``trainfree_config`` is an LTS config dict."""

    model_type = "trainfree-gpt2"
    trainfree_space: str = "gpt2"


class TrainfreeTransXLConfig(TrainfreeLTSConfig):
    """LTS heterogeneous Transformer-XL (space ``transxl``). ``max_position_embeddings`` is
    the training segment length ``tgt_len``; relative positions accept longer inputs."""

    model_type = "trainfree-transxl"
    trainfree_space: str = "transxl"


class TrainfreeFlexiBertConfig(PretrainedConfig):
    """FlexiBERT / NAS-Bench-BERT encoders (spaces ``flexibert`` and ``flexibert-published``).

    ``tie_word_embeddings`` ties the masked-LM decoder to the word embeddings (ELECTRA's
    default); ``num_labels`` sizes the sequence-classification head.
    """

    model_type = "trainfree-flexibert"
    trainfree_space: str = "flexibert"
    trainfree_config: dict[str, Any] | None = None
    trainfree_build_config: dict[str, Any] | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    embedding_size: int | None = None
    num_hidden_layers: int | None = None
    max_position_embeddings: int | None = None
    type_vocab_size: int | None = None
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    classifier_dropout: float | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        if self.trainfree_build_config is None:
            self.trainfree_build_config = self.trainfree_config
        c = self.trainfree_build_config
        if c is not None:
            self.vocab_size = c.get("vocab_size", 30522)
            self.hidden_size = c["hidden_size"]
            self.embedding_size = c.get("embedding_size", 128)
            self.num_hidden_layers = len(c["layers"])
            self.max_position_embeddings = c.get("max_position", 512)
            self.type_vocab_size = c.get("type_vocab_size", 2)
            self.layer_norm_eps = c.get("layer_norm_eps", 1e-12)
            self.hidden_dropout_prob = c.get("hidden_dropout", 0.1)
            self.initializer_range = c.get("initializer_range", 0.02)
            if self.pad_token_id is None:
                self.pad_token_id = c.get("pad_token_id", 0)
        super().__post_init__(**kwargs)
