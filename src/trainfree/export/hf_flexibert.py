"""FlexiBERT as ``transformers`` models: family ``trainfree-flexibert`` (also what
``flexibert-published`` exports).

The bare encoder (:class:`TrainfreeFlexiBertModel`, what ``space.inference`` returns), an
ELECTRA-style masked-LM head whose decoder is tied to the word embeddings, and a
sequence-classification head on the first token. The heads are new, randomly initialised
modules (the benchmark has none).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput

from trainfree.export.families import family
from trainfree.export.hf_common import write_modeling_file
from trainfree.export.hf_config import TrainfreeFlexiBertConfig
from trainfree.spaces.flexibert import FlexiBertConfig, FlexiBertLayer, FlexiBertModel


def flexibert_config(data: dict[str, Any]) -> FlexiBertConfig:
    """The frozen :class:`FlexiBertConfig` of its JSON dict."""
    layers = tuple(FlexiBertLayer(**layer) for layer in data["layers"])
    return FlexiBertConfig(**{**data, "layers": layers})


class TrainfreeFlexiBertPreTrainedModel(PreTrainedModel):
    """Shared loading logic: the encoder is ``flexibert`` (the trainfree ``FlexiBertModel``),
    so base-model and head checkpoints load into each other."""

    config_class = TrainfreeFlexiBertConfig
    base_model_prefix = "flexibert"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        """ELECTRA's init (N(0, initializer_range), zero biases, unit LayerNorms) for modules
        that were not loaded: the heads of a fresh model. transformers skips loaded tensors."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.flexibert.embedding.word_embeddings

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        write_modeling_file(save_directory, self.config.model_type)

    def encode(self, input_ids: torch.Tensor, token_type_ids: Any = None, want_states: Any = False):
        """Last hidden state ``[B, T, H]`` and, if asked, all ``L + 1`` hidden states."""
        last, states = self.flexibert(input_ids, token_type_ids, output_hidden_states=True)
        return last, (tuple(states) if want_states else None)


class TrainfreeFlexiBertModel(TrainfreeFlexiBertPreTrainedModel):
    """The bare encoder: ``last_hidden_state`` is what ``space.inference`` returns. The
    attention mask is accepted and ignored, as in the original models."""

    def __init__(self, config: TrainfreeFlexiBertConfig) -> None:
        super().__init__(config)
        self.flexibert = FlexiBertModel(flexibert_config(config.trainfree_build_config))
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput:
        last, states = self.encode(input_ids, token_type_ids, output_hidden_states)
        return BaseModelOutput(last_hidden_state=last, hidden_states=states)


class FlexiBertMaskedLMHead(nn.Module):
    """ELECTRA generator head: ``decoder(LayerNorm(gelu(dense(h))))``, hidden size to the
    embedding width and then to the vocabulary; the decoder weight is the word-embedding
    table when ``tie_word_embeddings``."""

    def __init__(self, config: TrainfreeFlexiBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(hidden))))


class TrainfreeFlexiBertForMaskedLM(TrainfreeFlexiBertPreTrainedModel):
    """Encoder + masked-LM head; ``labels`` ``[B, T]`` with ``-100`` on unmasked positions."""

    _tied_weights_keys = {  # noqa: RUF012 - transformers reads this class attribute
        "lm_head.decoder.weight": "flexibert.embedding.word_embeddings.weight"
    }

    def __init__(self, config: TrainfreeFlexiBertConfig) -> None:
        super().__init__(config)
        self.flexibert = FlexiBertModel(flexibert_config(config.trainfree_build_config))
        self.lm_head = FlexiBertMaskedLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head.decoder

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput:
        last, states = self.encode(input_ids, token_type_ids, output_hidden_states)
        logits = self.lm_head(last)  # [B, T, vocab]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=states)


class FlexiBertClassificationHead(nn.Module):
    """ELECTRA classification head on the first token: dense, gelu, dropout, projection."""

    def __init__(self, config: TrainfreeFlexiBertConfig) -> None:
        super().__init__()
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(p)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])  # [B, H]
        x = self.dropout(F.gelu(self.dense(x)))
        return self.out_proj(x)  # [B, num_labels]


class TrainfreeFlexiBertForSequenceClassification(TrainfreeFlexiBertPreTrainedModel):
    """Encoder + classification head (``num_labels`` from the config). The loss follows
    transformers' ``problem_type`` rules: regression for one label, cross-entropy for
    integer labels, binary cross-entropy for multi-label float targets."""

    def __init__(self, config: TrainfreeFlexiBertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.flexibert = FlexiBertModel(flexibert_config(config.trainfree_build_config))
        self.classifier = FlexiBertClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        last, states = self.encode(input_ids, token_type_ids, output_hidden_states)
        logits = self.classifier(last)
        loss = None
        if labels is not None:
            kind = self.config.problem_type
            if kind is None:
                if self.num_labels == 1:
                    kind = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    kind = "single_label_classification"
                else:
                    kind = "multi_label_classification"
            if kind == "regression":
                loss = F.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
            elif kind == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=states)


family(
    "trainfree-flexibert",
    TrainfreeFlexiBertConfig,
    {
        "AutoModelForMaskedLM": TrainfreeFlexiBertForMaskedLM,
        "AutoModel": TrainfreeFlexiBertModel,
        "AutoModelForSequenceClassification": TrainfreeFlexiBertForSequenceClassification,
    },
)
