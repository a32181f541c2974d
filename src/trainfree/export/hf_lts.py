"""The LiteTransformerSearch causal LMs as ``transformers`` models: families ``trainfree-gpt2``
and ``trainfree-transxl`` (:class:`TrainfreeGPT2ForCausalLM`, :class:`TrainfreeTransXLForCausalLM`).

The trainfree model *is* the language model (its adaptive softmax is the head), so the
wrapper holds it as ``model`` and adds the Hugging Face conventions: ``labels`` shifted
inside, ``-100`` ignored, ``logits`` = log-probabilities (``log_softmax`` of them is the
identity, so sampling and cross-entropy see the same distribution).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput, CausalLMOutputWithPast

from trainfree.export.families import family
from trainfree.export.hf_common import write_modeling_file
from trainfree.export.hf_config import TrainfreeGPT2Config, TrainfreeLTSConfig, TrainfreeTransXLConfig
from trainfree.spaces.gpt2 import GPT2LM
from trainfree.spaces.lts import LTSConfig
from trainfree.spaces.transxl import TransXLLM


def lts_config(data: dict[str, Any]) -> LTSConfig:
    """The frozen :class:`LTSConfig` of its JSON dict (lists back to tuples)."""
    return LTSConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


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


family("trainfree-gpt2", TrainfreeGPT2Config, {"AutoModelForCausalLM": TrainfreeGPT2ForCausalLM})
family("trainfree-transxl", TrainfreeTransXLConfig, {"AutoModelForCausalLM": TrainfreeTransXLForCausalLM})
