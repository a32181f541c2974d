"""The ``README.md`` model card written into every Hugging Face export folder.

It says what the folder holds (space, parameter counts, provenance), how to load it with and
without trainfree, and the one thing a user must add before training: a tokenizer. The
spaces fix the vocabulary *size*, not the tokenizer, so the card names the size to match.
"""

from __future__ import annotations

import json
from typing import Any

_LOADERS = {
    "trainfree-gpt2": "AutoModelForCausalLM",
    "trainfree-transxl": "AutoModelForCausalLM",
    "trainfree-flexibert": "AutoModelForMaskedLM",
    "gpt2": "AutoModelForCausalLM",
    "llama": "AutoModelForCausalLM",
}
#: model types saved as a stock transformers class (no remote code)
_STOCK = {"gpt2": "a stock GPT-2", "llama": "a stock LlamaForCausalLM"}


def model_card(space: Any, config: Any, model_type: str, as_: str, record: dict[str, Any]) -> str:
    """Markdown text of the card (front matter for the Hub, then the sections)."""
    counts = record["param_counts"]
    vocab = space.vocab_size(config)
    lines = [
        "---",
        "library_name: transformers",
        "tags: [trainfree, architecture-search, untrained]",
        "---",
        f"# {model_type}: an architecture from trainfree's `{space.name}` space",
        "",
        "Randomly initialised (not trained): the weights are `space.build(config, seed="
        f"{record['seed']})`, the initialisation trainfree's proxies scored. Train it before use.",
        "",
        f"- parameters: {counts['total']:,} (decoder/non-embedding {counts['decoder']:,})",
        f"- vocabulary size: {vocab:,} token ids; maximum sequence length: {space.max_seq_len(config)}",
    ]
    if "run" in record:
        lines.append(f"- from search run `{record['run']}`, frontier row {record['frontier_rank']}")
    lines += [
        f"- export check: max abs difference to trainfree's model {record['check_max_abs_diff']:.1e}",
    ]
    lines += _load_section(model_type)
    lines += [
        "## Tokenizer",
        "",
        _tokenizer_note(config, vocab),
        "",
        "## trainfree config",
        "",
        "```json",
        json.dumps(record["config"], indent=1, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def _load_section(model_type: str) -> list[str]:
    """The "Load" section: remote code (or trainfree's registration) for trainfree's own model
    types, the stock class for those saved as one."""
    loader = _LOADERS.get(model_type, "AutoModel")
    lines = ["", "## Load", "", "```python", f"from transformers import {loader}"]
    if model_type not in _STOCK:
        lines += [
            "# without trainfree installed: the model code is modeling_trainfree.py in this folder",
            f'model = {loader}.from_pretrained("PATH", trust_remote_code=True)',
            "# with trainfree installed: import trainfree.export.hf_model  (registers the classes)",
        ]
    else:
        lines.append(f'model = {loader}.from_pretrained("PATH")  # {_STOCK[model_type]}')
    return [*lines, "```", ""]


def _tokenizer_note(config: Any, vocab: int) -> str:
    """No tokenizer ships with the weights: say which one fits (the one the space names, else
    any with at most ``vocab`` ids)."""
    named = getattr(config, "tokenizer", None)  # the llama space names its tokenizer
    if named:
        return (
            f"No tokenizer is included: the architecture was searched with the `{named}` tokenizer's "
            f"{vocab:,} ids; use that tokenizer (see trainfree's docs/llama.md for who ships it)."
        )
    return (
        f"No tokenizer is included: the space fixes the vocabulary size ({vocab:,}), not the "
        "tokenizer. Use any tokenizer with at most that many ids (or train one with exactly that "
        "many); see trainfree's docs/export.md for the sizes LiteTransformerSearch used."
    )
