"""Toy LiteTransformerSearch configs shared by the LTS test files (fast to build for real)."""

from __future__ import annotations

from trainfree import get_space
from trainfree.spaces.lts_config import LTSConfig


def tiny(space_name: str, **changes) -> LTSConfig:
    """A toy config: 300 tokens in three clusters, three heterogeneous layers."""
    data = dict(
        n_token=300, n_layer=3, d_model=64, n_head=[2, 4, 8], d_head=[32, 16, 8], d_inner=[100, 128, 90],
        d_embed=32, div_val=2, cutoffs=[100, 200, 300], tie_projs=[False, True, True], tgt_len=16,
        mem_len=8 if space_name == "transxl" else 0,
    )  # fmt: skip
    data.update(changes)
    return get_space(space_name).config_from_dict(data)


# Toy variants covering every adaptive layout: div_val 1 with and without projections,
# div_val 2/4, tied and untied projections, and a single cluster (LM1B GPT-2).
VARIANTS = {
    "div1_proj": dict(div_val=1, d_embed=32),
    "div1_noproj": dict(div_val=1, d_embed=64, tie_projs=[False, False, True]),
    "div2": dict(div_val=2, d_embed=32),
    "div4_mixed_ties": dict(div_val=4, d_embed=64, tie_projs=[True, False, True]),
    "one_cluster": dict(div_val=4, d_embed=64, cutoffs=[300], tie_projs=[False]),
}
