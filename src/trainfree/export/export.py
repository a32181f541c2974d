"""Library entry points of ``trainfree export``: a searched architecture as a model folder.

:func:`export_config` writes one config; :func:`trainfree.export.from_run.export_run` one or
all frontier rows of a search run, through the same writer (:func:`write_export`). Every folder
is written in a temporary sibling folder and renamed into place only when complete and
checked, so an error or a kill never leaves a half-written export; an existing non-empty
folder is only replaced with ``force``.

Formats: ``hf`` (``config.json``, ``model.safetensors``, ``modeling_trainfree.py``,
``generation_config.json`` for causal models, ``README.md``, ``trainfree.json``), optionally
``as_="gpt2"`` for a stock GPT-2, ``onnx`` (``model.onnx``, ``trainfree.json``) and, for the
``llama`` space, ``gguf`` (``model-<quantize>.gguf``, ``trainfree.json``; ``quantize`` f32,
f16, q8_0 or q4_k_m: :mod:`trainfree.export.gguf_check`). Each export is checked: the saved
model is loaded back and compared with trainfree's (``space.inference``) on a seeded batch.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainfree._version import __version__
from trainfree.errors import TrainfreeError
from trainfree.export.card import model_card
from trainfree.export.folders import check_out, publish, staging
from trainfree.io import atomic_write_json, atomic_write_text
from trainfree.spaces.base import seeded

FORMATS = ("hf", "onnx", "gguf")
AS_CHOICES = ("trainfree", "gpt2")
#: space -> Hugging Face model_type
MODEL_TYPES = {
    "gpt2": "trainfree-gpt2",
    "transxl": "trainfree-transxl",
    "flexibert": "trainfree-flexibert",
    "flexibert-published": "trainfree-flexibert",
    "llama": "llama",  # the stock LlamaForCausalLM (export/llama_export.py)
}
#: float32 agreement demanded of the exported model (max abs difference)
HF_ATOL = 1e-5
#: what an export holds at its peak, in float32 weights: the model, its Hugging Face copy, the
#: copy loaded back to check it, and a build's temporaries
EXPORT_FACTOR = 4.0
HF_INSTALL = "pip install 'trainfree[hf]' (transformers>=5,<6, safetensors)"


@dataclass
class ExportResult:
    """What one export wrote and measured."""

    out: Path
    space: str
    format: str
    model_type: str
    params: int
    seconds: float
    max_abs_diff: float
    files: list[str] = field(default_factory=list)
    detail: str = ""  # what else the check found (gguf: the file's format and tensor types)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out)}


# ------------------------------------------------------------------ inputs
def _require_hf() -> None:
    try:
        import safetensors  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise TrainfreeError(
            f"export to Hugging Face format needs the optional extra: {HF_INSTALL}"
        ) from None


# ------------------------------------------------------------------ exports
def export_config(
    space: Any,
    config: Any,
    out: str | Path,
    *,
    fmt: str = "hf",
    as_: str = "trainfree",
    force: bool = False,
    seed: int = 0,
    source: dict[str, Any] | None = None,
    inputs: Sequence[str | Path] = (),
    quantize: str | None = None,
) -> ExportResult:
    """Export one typed ``config`` of ``space`` (a space object) to the folder ``out``.

    The weights are ``space.build(config, seed)``: the initialisation a proxy scored when
    the search used the same seed. ``source`` (run directory, frontier row) is recorded in
    ``trainfree.json``; ``inputs``: files the export was read from, which ``out`` must not
    hold (``--force`` replaces ``out`` as a whole); ``quantize``: the GGUF weight format
    (``--format gguf``; default f16)."""
    quantize = validate_options(space, fmt, as_, quantize)
    out = check_out(Path(out), force, [Path(p) for p in inputs])
    tmp = staging(out)
    try:
        result = write_export(space, config, tmp, fmt, as_, seed, source or {}, quantize)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.out = out
    return result


def validate_options(space: Any, fmt: str, as_: str, quantize: str | None = None) -> str | None:
    """The options checked (one line each), before anything is read or written; the GGUF
    weight format (None: not gguf)."""
    if fmt not in FORMATS:
        raise TrainfreeError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "gguf":
        from trainfree.export.gguf_check import check_options

        return check_options(space, as_, quantize)
    if quantize is not None:
        raise TrainfreeError(f"--quantize {quantize}: applies to --format gguf only")
    if as_ not in AS_CHOICES:
        raise TrainfreeError(f"--as {as_!r}: expected one of {', '.join(AS_CHOICES)}")
    if as_ == "gpt2" and (space.name != "gpt2" or fmt != "hf"):
        raise TrainfreeError("--as gpt2 applies to --space gpt2 with --format hf only")
    if fmt == "hf":
        if space.name not in MODEL_TYPES:
            raise TrainfreeError(
                f"space '{space.name}' has no Hugging Face export (known: {', '.join(MODEL_TYPES)})"
            )
        _require_hf()
    return None


def write_export(
    space: Any, config: Any, folder: Path, fmt: str, as_: str, seed: int, source: dict, quantize: str | None
) -> ExportResult:
    """Build ``config`` with ``seed``, write it into the (staging) ``folder`` in format ``fmt``,
    check it, and add ``trainfree.json`` (``source`` merged in) and, for ``hf``, the model card."""
    start = time.perf_counter()
    model = _build(space, config, seed)
    record: dict[str, Any] = {
        "space": space.name,
        "config": space.config_to_dict(config),
        "seed": seed,
        "param_counts": space.param_counts(config).as_dict(),
        **source,
    }
    detail = ""
    if fmt == "gguf":
        from trainfree.export.gguf_check import export_gguf

        record["gguf"], detail = export_gguf(space, config, model, folder, quantize)
        diff, model_type, params = record["gguf"]["max_abs_diff"], "gguf", space.param_counts(config).total
    elif fmt == "onnx":
        from trainfree.export.onnx_export import export_onnx

        record["onnx"] = export_onnx(space, config, model, folder / "model.onnx")
        diff, model_type, params = record["onnx"]["max_abs_diff"], "onnx", space.param_counts(config).total
    elif as_ == "gpt2":
        diff, params = _write_stock_gpt2(space, config, model, folder)
        model_type = "gpt2"
    elif MODEL_TYPES.get(space.name) == "llama":
        from trainfree.export.llama_export import write_stock_llama

        diff, params = write_stock_llama(space, config, model, folder)
        model_type = "llama"
    else:
        diff, params, model_type = _write_hf(space, config, model, folder, seed)
    record["check_max_abs_diff"] = diff
    record["trainfree_version"] = __version__
    atomic_write_json(folder / "trainfree.json", record)
    if fmt == "hf":
        atomic_write_text(folder / "README.md", model_card(space, config, model_type, as_, record))
    return ExportResult(
        out=folder,
        space=space.name,
        format=fmt if as_ == "trainfree" else f"{fmt}:{as_}",
        model_type=model_type,
        params=params,
        seconds=time.perf_counter() - start,
        max_abs_diff=diff,
        files=sorted(p.name for p in folder.iterdir()),
        detail=detail,
    )


def _build(space: Any, config: Any, seed: int) -> torch.nn.Module:
    """The model, built only if it fits: an export holds the model, its Hugging Face copy and
    the copy loaded back, so a model too large for this machine is refused in one line
    before anything is allocated (``profile`` has the same guard, for one copy)."""
    from trainfree.runtime.workers import MB, available_mb

    need = space.param_counts(config).total * 4 / MB * EXPORT_FACTOR
    have = available_mb()
    if need > have:
        raise TrainfreeError(
            f"cannot export this model here: it needs about {need:,.0f} MB ({EXPORT_FACTOR:g} x its "
            f"float32 weights), {have:,.0f} MB are available"
        )
    try:
        return space.build(config, seed=seed).eval()
    except (RuntimeError, MemoryError) as exc:  # an allocation the estimate did not foresee
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainfreeError(f"cannot export this model here: building it failed ({first})") from None


def _reference(space: Any, config: Any, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    from trainfree.export.onnx_export import example_ids

    ids = example_ids(space, config, 2, min(16, space.max_seq_len(config)), seed=0)
    with torch.no_grad():
        return ids, space.inference(model, ids)


def _write_hf(
    space: Any, config: Any, model: torch.nn.Module, folder: Path, seed: int
) -> tuple[float, int, str]:
    import transformers
    from transformers.utils import logging as hf_logging

    from trainfree.export.hf_model import FAMILIES, auto_map

    model_type = MODEL_TYPES[space.name]
    config_class, classes = FAMILIES[model_type]
    main = next(iter(classes.values()))
    build = space.effective_config(config) if hasattr(space, "effective_config") else config
    hf_config = config_class(
        trainfree_space=space.name,
        trainfree_config=space.config_to_dict(config),
        trainfree_build_config=space.config_to_dict(build),
        architectures=[main.__name__],
    )
    hf_config.auto_map = auto_map(model_type)
    hf_logging.disable_progress_bar()
    try:
        with seeded(seed + 1):  # the heads (FlexiBERT) are new: seeded too
            wrapper = main(hf_config)
        getattr(wrapper, wrapper.base_model_prefix).load_state_dict(model.state_dict())
        if getattr(main, "kv_cache", False):  # gpt2: a cache, and no max_length that every
            wrapper.generation_config.use_cache = True  # generate(max_new_tokens=...) warns about
        elif hasattr(hf_config, "max_position_embeddings") and main.can_generate():
            wrapper.generation_config.max_length = hf_config.max_position_embeddings
            wrapper.generation_config.use_cache = False
        wrapper.save_pretrained(folder)
        auto = getattr(transformers, next(iter(classes)))  # the registered Auto class
        loaded = auto.from_pretrained(folder).eval()
    finally:
        hf_logging.enable_progress_bar()
    ids, ref = _reference(space, config, model)
    with torch.no_grad():
        got = loaded(ids).logits if main.can_generate() else loaded.encode(ids)[0]
    diff = float((got - ref).abs().max())
    if not diff <= HF_ATOL:
        raise TrainfreeError(f"export check failed: the saved model differs from trainfree's by {diff:.2e}")
    params = loaded.num_parameters()
    encoder = getattr(loaded, loaded.base_model_prefix)
    core = sum(p.numel() for p in encoder.parameters())
    if core != space.param_counts(config).total:
        raise TrainfreeError(
            f"export check failed: {core} parameters, param_counts says {space.param_counts(config).total}"
        )
    return diff, params, model_type


def _write_stock_gpt2(space: Any, config: Any, model: torch.nn.Module, folder: Path) -> tuple[float, int]:
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from trainfree.export.stock_gpt2 import to_stock_gpt2

    stock = to_stock_gpt2(config, model)
    hf_logging.disable_progress_bar()
    try:
        stock.save_pretrained(folder)
        loaded = GPT2LMHeadModel.from_pretrained(folder).eval()
    finally:
        hf_logging.enable_progress_bar()
    ids, ref = _reference(space, config, model)
    with torch.no_grad():
        got = torch.log_softmax(loaded(ids).logits, dim=-1)
    diff = float((got - ref).abs().max())
    if not diff <= HF_ATOL:
        raise TrainfreeError(f"export check failed: the stock GPT-2 differs from trainfree's by {diff:.2e}")
    return diff, loaded.num_parameters()
