"""``--as gpt2``: a homogeneous LTS GPT-2 as a stock ``transformers.GPT2LMHeadModel``.

Any tool that reads GPT-2 checkpoints (vLLM, llama.cpp converters, ONNX exporters, the Hub
widgets) then reads the model without custom code. Only configs that stock GPT-2 can express
qualify: every layer with the same head count and FFN width, a plain embedding (one cluster,
``div_val = 1``, ``d_embed = d_model``, so no adaptive input or softmax) and a zero output
bias (stock GPT-2's ``lm_head`` has none; a freshly built model's bias is zero).

Two differences are absorbed by the weight mapping, so that the log-probabilities match:

- LTS scales the token embedding by ``sqrt(d_model)``; stock GPT-2 does not. ``wte`` holds
  the scaled table, so the output layer cannot be the same tensor: the stock model is saved
  with ``tie_word_embeddings=False`` and ``lm_head`` holds the unscaled table
  (``n_token x d_model`` more stored parameters, the same function).
- trainfree writes HF's ``Conv1D`` layers as ``nn.Linear``: weights are transposed back.
"""

from __future__ import annotations

import torch

from trainfree.errors import TrainfreeError
from trainfree.spaces.lts import LTSConfig


def stock_gpt2_problem(config: LTSConfig) -> str | None:
    """Why ``config`` cannot be a stock GPT-2 (None if it can)."""
    if len(set(config.n_head)) > 1:
        return f"its layers have different head counts {list(config.n_head)}"
    if len(set(config.d_inner)) > 1:
        return f"its layers have different FFN widths d_inner={list(config.d_inner)}"
    if config.n_clusters > 1:
        return (
            f"it has an adaptive softmax with {config.n_clusters} clusters (cutoffs {list(config.cutoffs)})"
        )
    if config.div_val != 1 or config.d_embed != config.d_model:
        return f"its embedding is projected (d_embed={config.d_embed}, d_model={config.d_model})"
    return None


def to_stock_gpt2(config: LTSConfig, model: torch.nn.Module):
    """A ``GPT2LMHeadModel`` computing the same function as trainfree's ``GPT2LM`` ``model``."""
    from transformers import GPT2LMHeadModel

    problem = stock_gpt2_problem(config)
    if problem is not None:
        raise TrainfreeError(
            f"--as gpt2 needs a homogeneous GPT-2 without adaptive embedding/softmax, but {problem}; "
            "export it without --as (the trainfree-gpt2 model type)"
        )
    bias = model.head.out_layers_biases[0]
    if bool(bias.detach().abs().max() > 0):
        raise TrainfreeError("--as gpt2: the output bias is not zero, and stock GPT-2's lm_head has no bias")
    stock = GPT2LMHeadModel(_stock_config(config))
    state = _stock_state(model)
    result = stock.load_state_dict({k: v.detach().contiguous() for k, v in state.items()}, strict=False)
    left = [k for k in result.missing_keys if not k.endswith(".attn.bias") and "masked_bias" not in k]
    if left or result.unexpected_keys:
        raise TrainfreeError(
            f"--as gpt2: weight mapping incomplete (missing {left}, unexpected {result.unexpected_keys})"
        )
    stock.generation_config.max_length = config.tgt_len
    return stock.eval()


def _stock_config(config: LTSConfig):
    """The ``GPT2Config`` of a homogeneous ``config``: GPT-2's own names for the same sizes;
    ``lm_head`` untied, since ``wte`` holds the embedding times its scale and ``lm_head`` the table."""
    from transformers import GPT2Config

    d = config.d_model
    return GPT2Config(
        vocab_size=config.n_token,
        n_positions=config.tgt_len,
        n_embd=d,
        n_layer=config.n_layer,
        n_head=config.n_head[0],
        n_inner=config.d_inner[0],
        activation_function="gelu_new",
        resid_pdrop=config.dropout,
        embd_pdrop=0.0,
        attn_pdrop=config.dropatt,
        layer_norm_epsilon=1e-5,
        initializer_range=config.weight_init_std,
        tie_word_embeddings=False,
        use_cache=True,
    )


def _stock_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``GPT2LMHeadModel`` state-dict names -> trainfree's tensors: ``Conv1D`` weights are the
    transposes of trainfree's ``Linear`` ones, and ``wte`` holds the embedding with its scale."""
    table = model.embedding.wte.emb_layers[0].weight.detach()
    state = {
        "transformer.wte.weight": table * model.embedding.wte.emb_scale,
        "transformer.wpe.weight": model.embedding.wpe.weight,
        "transformer.ln_f.weight": model.ln_f.weight,
        "transformer.ln_f.bias": model.ln_f.bias,
        "lm_head.weight": table,
    }
    for i, block in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        state |= {
            p + "ln_1.weight": block.ln_1.weight,
            p + "ln_1.bias": block.ln_1.bias,
            p + "ln_2.weight": block.ln_2.weight,
            p + "ln_2.bias": block.ln_2.bias,
            p + "attn.c_attn.weight": block.attn.c_attn.weight.t(),
            p + "attn.c_attn.bias": block.attn.c_attn.bias,
            p + "attn.c_proj.weight": block.attn.c_proj.weight.t(),
            p + "attn.c_proj.bias": block.attn.c_proj.bias,
            p + "mlp.c_fc.weight": block.ffn.c_fc.weight.t(),
            p + "mlp.c_fc.bias": block.ffn.c_fc.bias,
            p + "mlp.c_proj.weight": block.ffn.c_proj.weight.t(),
            p + "mlp.c_proj.bias": block.ffn.c_proj.bias,
        }
    return state
