"""The toy llama config and generation settings shared by the llama test files (builds in
milliseconds, runs in PyTorch and in llama.cpp)."""

from __future__ import annotations

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
