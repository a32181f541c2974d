"""``PreTrainedModel`` wrappers around trainfree's own modules, with the heads that fit.

- ``gpt2`` / ``transxl``: :class:`TrainfreeGPT2ForCausalLM`, :class:`TrainfreeTransXLForCausalLM`.
  The trainfree model *is* the language model (its adaptive softmax is the head), so the
  wrapper holds it as ``model`` and adds the Hugging Face conventions: ``labels`` shifted
  inside, ``-100`` ignored, ``logits`` = log-probabilities (``log_softmax`` of them is the
  identity, so sampling and cross-entropy see the same distribution).
- ``flexibert`` / ``flexibert-published``: the bare encoder (:class:`TrainfreeFlexiBertModel`,
  what ``space.inference`` returns), an ELECTRA-style masked-LM head whose decoder is tied to
  the word embeddings, and a sequence-classification head on the first token. The heads are
  new, randomly initialised modules (the benchmark has none).

The wrappers never re-implement a layer: the modules are trainfree's. For a folder that loads
without trainfree, ``trainfree.export.remote`` copies the source of these classes and of
everything they use into one self-contained ``modeling_trainfree.py``.

Importing this module registers the classes with ``AutoConfig`` / ``AutoModel*``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    DynamicCache,
    GenerationMixin,
    PreTrainedModel,
)
from transformers.modeling_outputs import (
    BaseModelOutput,
    CausalLMOutput,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    SequenceClassifierOutput,
)

from trainfree.export.hf_config import (
    REMOTE_MODULE,
    TrainfreeFlexiBertConfig,
    TrainfreeGPT2Config,
    TrainfreeLTSConfig,
    TrainfreeTransXLConfig,
)
from trainfree.spaces.flexibert import FlexiBertConfig, FlexiBertLayer, FlexiBertModel
from trainfree.spaces.gpt2 import GPT2LM
from trainfree.spaces.lts import LTSConfig
from trainfree.spaces.transxl import TransXLLM


def lts_config(data: dict[str, Any]) -> LTSConfig:
    """The frozen :class:`LTSConfig` of its JSON dict (lists back to tuples)."""
    return LTSConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def flexibert_config(data: dict[str, Any]) -> FlexiBertConfig:
    """The frozen :class:`FlexiBertConfig` of its JSON dict."""
    layers = tuple(FlexiBertLayer(**layer) for layer in data["layers"])
    return FlexiBertConfig(**{**data, "layers": layers})


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


# ============================================================== LTS causal LMs


def lts_tied_weights(config: LTSConfig, embedding: str) -> dict[str, str]:
    """``{target: source}`` patterns of the tensors the adaptive softmax shares with the
    embedding at ``embedding``: the output tables and the tied projections. Anchored and
    escaped, so that ``out_projs.1`` does not also match ``out_projs.10``."""
    tied = {}
    tables = config.n_clusters if config.div_val > 1 else 1
    for i in range(tables):
        tied[f"model.head.out_layers_weights.{i}"] = f"{embedding}.emb_layers.{i}.weight"
    if config.has_projections():
        for i, is_tied in enumerate(config.tie_projs):
            if is_tied:
                tied[f"model.head.out_projs.{i}"] = f"{embedding}.emb_projs.{0 if config.div_val == 1 else i}"
    return {re.escape(k) + "$": re.escape(v) + "$" for k, v in tied.items()}


@dataclass
class TransXLCausalLMOutput(CausalLMOutput):
    """``CausalLMOutput`` plus the Transformer-XL memories (one ``[m, B, d]`` per layer)."""

    mems: list[torch.Tensor] | None = None


class TrainfreeLTSForCausalLM(PreTrainedModel, GenerationMixin):
    """A LiteTransformerSearch language model as a ``transformers`` causal LM.

    ``forward(input_ids, labels=None)``: without ``labels``, ``logits`` are the
    log-probabilities of every next token ``[B, T, n_token]`` (what ``space.inference``
    returns); with ``labels`` (the inputs, shifted here; ``-100`` ignored) the loss is the
    mean next-token NLL computed by the adaptive softmax, which only evaluates the clusters
    of the targets, and ``logits`` is left out (a 267k-token vocabulary would otherwise
    cost ``B x T x 267k`` floats per step). ``attention_mask`` is accepted and ignored: the
    models are causal, so right padding with ``-100`` labels is exact.
    """

    config_class = TrainfreeLTSConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    core_class: type[nn.Module] = GPT2LM
    embedding_path = "model.embedding"

    def __init__(self, config: TrainfreeLTSConfig) -> None:
        super().__init__(config)
        c = lts_config(config.trainfree_build_config)
        self.model = self.core_class(c)
        if self.model.head.out_layers_biases[0].device.type != "meta":
            self.model.tie_weights()
            self.model.reset_parameters()  # the benchmark authors' init (trainfree's)
        self._tied_weights_keys = lts_tied_weights(c, self.embedding_path)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing: the model initialised itself in ``__init__`` as trainfree does, and
        loaded weights must not be touched."""

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embedding

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        write_modeling_file(save_directory, self.config.model_type)

    def hidden_states(self, input_ids: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """Final hidden states ``[B, T, d]`` and the model's extra state (memories or None)."""
        return self.model(input_ids), None

    def lm_loss(self, hidden: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Any = None):
        """Mean NLL of ``labels[:, 1:]`` given ``hidden[:, :-1]``, ``-100`` ignored (or the
        sum divided by ``num_items_in_batch``, as Trainer asks under gradient accumulation)."""
        h = hidden[:, :-1].reshape(-1, hidden.size(-1))
        target = labels[:, 1:].reshape(-1).to(h.device)
        keep = target != -100
        nll = self.model.head(h[keep], target[keep])  # [N]
        denom = keep.sum() if num_items_in_batch is None else num_items_in_batch
        return nll.sum() / denom

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        num_items_in_batch: Any = None,
        **kwargs: Any,
    ) -> CausalLMOutput:
        hidden, extra = self.hidden_states(input_ids, **kwargs)
        if labels is not None:
            loss, logits = self.lm_loss(hidden, labels, num_items_in_batch), None
        else:
            loss = None
            logits = self.model.head.log_prob(hidden.reshape(-1, hidden.size(-1))).view(*hidden.shape[:2], -1)
        return self.output(loss, logits, extra)

    def output(self, loss: Any, logits: Any, extra: Any) -> CausalLMOutput:
        return CausalLMOutput(loss=loss, logits=logits)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, **kwargs: Any) -> dict[str, Any]:
        """No KV cache: every generation step reads the whole prefix."""
        return {"input_ids": input_ids}


class TrainfreeGPT2ForCausalLM(TrainfreeLTSForCausalLM):
    """LTS heterogeneous GPT-2 (space ``gpt2``): learned positions, at most ``tgt_len`` tokens.

    Generates with a KV cache (transformers' ``DynamicCache``, which ``GPT2LM`` fills layer by
    layer): each step reads the new token only. ``generate`` refuses, in one line and before
    generating, a prompt plus new tokens longer than the ``tgt_len`` learned positions.
    """

    config_class = TrainfreeGPT2Config
    core_class = GPT2LM
    embedding_path = "model.embedding.wte"
    #: generation keeps a KV cache (the export leaves ``use_cache`` on)
    kv_cache = True

    def hidden_states(self, input_ids: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """Hidden states of ``input_ids`` after the tokens in the cache (``cache``, or
        ``past_key_values`` before transformers 5.25; a new one when ``use_cache``)."""
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is None and kwargs.get("use_cache"):
            cache = DynamicCache()
        return self.model(input_ids, cache), cache

    def output(self, loss: Any, logits: Any, extra: Any) -> CausalLMOutput:
        if extra is None:
            return CausalLMOutput(loss=loss, logits=logits)
        name = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{name: extra})

    # transformers' own: with a cache, each step passes the new tokens only
    prepare_inputs_for_generation = GenerationMixin.prepare_inputs_for_generation

    def generate(self, inputs: torch.Tensor | None = None, **kwargs: Any) -> Any:
        ids = inputs if inputs is not None else kwargs.get("input_ids")
        config = kwargs.get("generation_config") or self.generation_config
        new = kwargs.get("max_new_tokens", config.max_new_tokens)
        limit = self.config.max_position_embeddings
        if ids is not None and new is not None and ids.shape[-1] + new > limit:
            raise ValueError(
                f"this GPT-2 has {limit} learned positions: a {ids.shape[-1]}-token prompt and "
                f"max_new_tokens={new} need {ids.shape[-1] + new}; generate at most {limit - ids.shape[-1]}"
            )
        return super().generate(inputs, **kwargs)


class TrainfreeTransXLForCausalLM(TrainfreeLTSForCausalLM):
    """LTS heterogeneous Transformer-XL (space ``transxl``). Pass ``mems`` (the ``mems`` of
    the previous segment's output) to attend to the previous ``mem_len`` tokens."""

    config_class = TrainfreeTransXLConfig
    core_class = TransXLLM
    embedding_path = "model.embedding"

    def hidden_states(self, input_ids: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        return self.model.forward_with_mems(input_ids, kwargs.get("mems"))

    def output(self, loss: Any, logits: Any, extra: Any) -> CausalLMOutput:
        return TransXLCausalLMOutput(loss=loss, logits=logits, mems=extra)


# ============================================================== FlexiBERT


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


# ============================================================== registry

#: model_type -> (config class, {auto class name: model class}); the first model class is
#: the one ``trainfree export`` writes (its ``architectures`` entry).
FAMILIES: dict[str, tuple[type, dict[str, type[PreTrainedModel]]]] = {
    "trainfree-gpt2": (TrainfreeGPT2Config, {"AutoModelForCausalLM": TrainfreeGPT2ForCausalLM}),
    "trainfree-transxl": (TrainfreeTransXLConfig, {"AutoModelForCausalLM": TrainfreeTransXLForCausalLM}),
    "trainfree-flexibert": (
        TrainfreeFlexiBertConfig,
        {
            "AutoModelForMaskedLM": TrainfreeFlexiBertForMaskedLM,
            "AutoModel": TrainfreeFlexiBertModel,
            "AutoModelForSequenceClassification": TrainfreeFlexiBertForSequenceClassification,
        },
    ),
}

_AUTO = {
    "AutoModel": AutoModel,
    "AutoModelForCausalLM": AutoModelForCausalLM,
    "AutoModelForMaskedLM": AutoModelForMaskedLM,
    "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
}


def auto_map(model_type: str) -> dict[str, str]:
    """The ``auto_map`` of a config.json: every class, in the folder's modeling file."""
    config_class, models = FAMILIES[model_type]
    out = {"AutoConfig": f"{REMOTE_MODULE}.{config_class.__name__}"}
    out.update({auto: f"{REMOTE_MODULE}.{cls.__name__}" for auto, cls in models.items()})
    return out


def register() -> None:
    """Register every family with ``AutoConfig`` and its ``AutoModel*`` classes (idempotent),
    so that an exported folder loads without ``trust_remote_code`` where trainfree is installed."""
    for model_type, (config_class, models) in FAMILIES.items():
        AutoConfig.register(model_type, config_class, exist_ok=True)
        for auto, cls in models.items():
            _AUTO[auto].register(config_class, cls, exist_ok=True)


register()
