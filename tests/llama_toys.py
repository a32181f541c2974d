"""The toy llama config and generation settings shared by the llama test files (builds in
milliseconds, runs in PyTorch and in llama.cpp)."""

from __future__ import annotations

from typing import Any

from search_toys import search_settings
from trainfree.hardware import HardwareSettings
from trainfree.search import SearchSettings

TINY = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "tie_word_embeddings": True,
    "tokenizer": "llama2",
}
#: small enough that a generation measurement takes a fraction of a second
GEN = {"mode": "generate", "prompt_len": 8, "context": 32, "new_tokens": 4, "warmup": 0, "repeats": 2}

#: the value sets of a toy llama search: models that build and generate in milliseconds
SEARCH_VALUES = {
    "num_hidden_layers": [1, 2],
    "hidden_size": [32, 64],
    "num_attention_heads": [2, 4],
    "num_key_value_heads": [1, 2],
    "head_dim": [8],
    "intermediate_size": [64],
    "tokenizer": ["llama2"],
}


def generation_search(hardware: HardwareSettings, **kw: Any) -> SearchSettings:
    """A few-evaluation llama search on measured decode and memory; ``kw`` overrides any field."""
    llama = dict(space="llama", objectives=["decode", "memory"], budget="6", pop_size=4, costs="measured")
    llama["hardware"] = hardware
    return search_settings(SEARCH_VALUES, **{**llama, **kw})
