"""Library entry points of ``trainfree export``: a searched architecture as a model folder.

:func:`export_config` writes one config, :func:`export_run` one or all frontier rows of a
search run. Every folder is written in a temporary sibling folder and renamed into place
only when complete and checked, so an error or a kill never leaves a half-written export;
an existing non-empty folder is only replaced with ``force``.

Formats: ``hf`` (``config.json``, ``model.safetensors``, ``modeling_trainfree.py``,
``generation_config.json`` for causal models, ``README.md``, ``trainfree.json``), optionally
``as_="gpt2"`` for a stock GPT-2, ``onnx`` (``model.onnx``, ``trainfree.json``) and, for the
``llama`` space, ``gguf`` (``model-<quantize>.gguf``, ``trainfree.json``; ``quantize`` f32,
f16, q8_0 or q4_k_m: :mod:`trainfree.export.gguf_check`). Each export is checked: the saved
model is loaded back and compared with trainfree's (``space.inference``) on a seeded batch.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainfree.errors import TrainfreeError
from trainfree.export.card import model_card
from trainfree.export.folders import check_out, publish, staging, within
from trainfree.io import atomic_write_json, atomic_write_text, read_json
from trainfree.spaces.base import seeded
from trainfree.spaces.configfile import read_config_file, resolve_config

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
    quantize = _check_options(space, fmt, as_, quantize)
    out = check_out(Path(out), force, [Path(p) for p in inputs])
    tmp = staging(out)
    try:
        result = _write(space, config, tmp, fmt, as_, seed, source or {}, quantize)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.out = out
    return result


def _check_options(space: Any, fmt: str, as_: str, quantize: str | None = None) -> str | None:
    """The options checked (one line each); the GGUF weight format (None: not gguf)."""
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


def _write(
    space: Any, config: Any, folder: Path, fmt: str, as_: str, seed: int, source: dict, quantize: str | None
) -> ExportResult:
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
    record["trainfree_version"] = _version()
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


def export_run(
    run_dir: str | Path,
    pick: str | int,
    out: str | Path,
    *,
    fmt: str = "hf",
    as_: str = "trainfree",
    force: bool = False,
    seed: int | None = None,
    quantize: str | None = None,
) -> list[ExportResult]:
    """Export frontier row ``pick`` (an index, or ``"all"``) of a search run directory.

    One row goes to ``out`` itself; ``all`` writes one sub-folder per row, named after its
    config file (``frontier_000_arch00042``), all published together. The space (with the
    run's value sets) and, unless given, the seed come from the run's ``settings.json``.
    Only the run's own files are read (regular files inside it), each checked."""
    run = Path(run_dir)
    space, run_seed, models = _read_run(run)
    rows = _pick(pick, len(models), run)
    seed = run_seed if seed is None else seed
    quantize = _check_options(space, fmt, as_, quantize)
    out = check_out(Path(out), force, [run])
    items = []
    for i in rows:
        name, data = _row_config(run, models[i], i, space)
        source = {
            # the run as the user named it, never an absolute path of their machine: the card
            # and trainfree.json travel with the model
            "run": run.name if run.is_absolute() else run.as_posix(),
            "frontier_rank": i,
            "frontier_row": {k: v for k, v in models[i].items() if k != "config"},
        }
        items.append((name.stem, resolve_config(space, data, str(run / name)), source))
    tmp = staging(out)
    results = []
    try:
        for stem, cfg, source in items:
            target = tmp if pick != "all" else tmp / stem
            target.mkdir(exist_ok=True)
            result = _write(space, cfg, target, fmt, as_, seed, source, quantize)
            result.out = out if pick != "all" else out / stem
            results.append(result)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return results


def _read_run(run: Path) -> tuple[Any, int, list[dict[str, Any]]]:
    """``(space, seed, frontier rows)`` of a finished run: ``settings.json`` read and checked
    as a search reads it, ``frontier.json`` an object whose ``models`` are objects."""
    from trainfree.search.settings import SearchSettings

    if not run.is_dir():
        raise TrainfreeError(f"--run {run}: no such run directory")
    try:
        settings = SearchSettings.from_dict(read_json(run / "settings.json"))
        frontier = read_json(run / "frontier.json")
    except FileNotFoundError as exc:
        if Path(exc.filename or "").name == "settings.json":
            raise TrainfreeError(f"--run {run}: not a search run (no settings.json)") from None
        raise TrainfreeError(
            f"--run {run} has no frontier yet (no frontier.json); let `trainfree search` finish"
        ) from None
    except (TrainfreeError, OSError, ValueError, TypeError, KeyError) as exc:
        why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise TrainfreeError(f"--run {run}: unreadable settings.json/frontier.json ({why})") from None
    models = frontier.get("models") if isinstance(frontier, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise TrainfreeError(f"--run {run}: frontier.json has no list of models (field 'models')")
    if not models:
        raise TrainfreeError(f"--run {run}: the frontier is empty (no architecture met the constraints)")
    return settings.make_space(), settings.seed, models


#: what a frontier row may name as its config file: one of the run's own ``configs/``
_CONFIG_FILE = re.compile(r"configs/[A-Za-z0-9_.-]+\.json")


def _row_config(run: Path, row: dict[str, Any], i: int, space: Any) -> tuple[Path, Any]:
    """The config file name and config data of frontier row ``i``: its file in the run's own
    ``configs/`` (a regular file, not through a symbolic link), else the row's own copy."""
    name = row.get("config_file") or f"configs/frontier_{i:03d}.json"
    if not isinstance(name, str) or not _CONFIG_FILE.fullmatch(name):
        raise TrainfreeError(
            f"--run {run}: frontier row {i} names config_file {name!r}; expected a file of the run's "
            "configs/ folder (configs/NAME.json)"
        )
    path = run / name
    if (run / "configs").is_symlink() or not within(path, run):
        raise TrainfreeError(f"--run {run}: configs/ is a symbolic link; expected the run's own folder")
    if path.exists() or path.is_symlink():
        file_space, data = read_config_file(path, follow=False)
    else:
        file_space, data = None, row.get("config")
    if not isinstance(data, dict):
        raise TrainfreeError(f"--run {run}: frontier row {i} has no config (field 'config')")
    if file_space is not None and file_space != space.name:
        raise TrainfreeError(f"{path}: a config of space '{file_space}', but the run searched '{space.name}'")
    return Path(name), data


def _pick(pick: str | int, n: int, run: Path) -> list[int]:
    if isinstance(pick, str) and pick.strip().lower() == "all":
        return list(range(n))
    try:
        i = int(pick)
    except (TypeError, ValueError):
        raise TrainfreeError(f"--pick {pick!r}: expected a frontier row number or 'all'") from None
    if not 0 <= i < n:
        raise TrainfreeError(f"--pick {i} is out of range: the frontier of {run} has {n} models (0-{n - 1})")
    return [i]


def _version() -> str:
    from trainfree import __version__

    return __version__
