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
    loader = _LOADERS.get(model_type, "AutoModel")
    vocab = space.vocab_size(config)
    remote = model_type not in _STOCK
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
        "",
        "## Load",
        "",
        "```python",
        f"from transformers import {loader}",
    ]
    if remote:
        lines += [
            "# without trainfree installed: the model code is modeling_trainfree.py in this folder",
            f'model = {loader}.from_pretrained("PATH", trust_remote_code=True)',
            "# with trainfree installed: import trainfree.export.hf_model  (registers the classes)",
        ]
    else:
        lines.append(f'model = {loader}.from_pretrained("PATH")  # {_STOCK[model_type]}')
    named = getattr(config, "tokenizer", None)  # the llama space names its tokenizer
    tokenizer = (
        f"No tokenizer is included: the architecture was searched with the `{named}` tokenizer's "
        f"{vocab:,} ids; use that tokenizer (see trainfree's docs/llama.md for who ships it)."
        if named
        else f"No tokenizer is included: the space fixes the vocabulary size ({vocab:,}), not the "
        "tokenizer. Use any tokenizer with at most that many ids (or train one with exactly that "
        "many); see trainfree's docs/export.md for the sizes LiteTransformerSearch used."
    )
    lines += [
        "```",
        "",
        "## Tokenizer",
        "",
        tokenizer,
        "",
        "## trainfree config",
        "",
        "```json",
        json.dumps(record["config"], indent=1, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)
