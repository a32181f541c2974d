"""The recorded way to a fresh initialisation's laws (any space): the space's own build, with
the random fills skipped.

``space.build(config, seed)`` runs under a ``TorchDispatchMode`` that records every in-place
write to a tensor and *skips the random fills* (the expensive part of a build); the last full
write of each parameter's storage is its law. Anything it cannot read as a centred law refuses
with :class:`LawUnknown` (see :mod:`trainfree.proxies.fastinit`, which also holds the declared
tables checked against this recording). Its own module because it is the one piece that hooks
into torch's dispatcher; :class:`MatrixLaw`, what both ways produce, is defined here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from trainfree.proxies.spectral import transformer_matrices

#: Partial zero writes up to this share of a matrix (padding rows) are folded into its std.
MAX_ZEROED_SHARE = 0.01


class LawUnknown(Exception):
    """The initialisation law of some weight matrix could not be derived."""


@dataclass(frozen=True)
class MatrixLaw:
    """One weight matrix of a fresh initialisation: where it sits, its shape and its std."""

    name: str
    group: str  # attention, ffn or embedding
    layer: int
    rows: int
    cols: int
    std: float


@dataclass
class _Write:
    op: str
    offset: int
    numel: int
    contiguous: bool
    args: dict[str, Any]


_FILLS = {"normal_", "uniform_"}  # skipped: their values are never read, only their law
_WRITES = {"normal_", "uniform_", "zero_", "fill_"}


class _InitRecorder(TorchDispatchMode):
    """Records in-place writes per storage and skips the random fills.

    A skipped fill leaves the memory as it was, so any later op that *reads* such a storage
    (anything but a view, an overwrite or an ``empty_like``: ``trunc_normal_``'s resampling,
    a ``copy_`` out of it) would depend on garbage; it is noted in ``tainted``, and the whole
    recording is refused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[int, list[_Write]] = {}
        self.skipped: set[int] = set()
        self.tainted: str | None = None

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        inplace = name.endswith("_") or "out" in kwargs
        target = kwargs.get("out") if "out" in kwargs else (args[0] if args and inplace else None)
        if not isinstance(target, torch.Tensor) or target.is_meta or target.numel() == 0:
            target = None
        if not func.is_view and name not in _METADATA_ONLY:
            read = [*tree_leaves(args[1:] if target is not None and name in _WRITES else args)]
            read += [v for k, v in kwargs.items() if k != "out"]
            for t in read:
                if isinstance(t, torch.Tensor) and not t.is_meta and t.numel() and _ptr(t) in self.skipped:
                    self.tainted = self.tainted or f"{name} reads a skipped random fill"
        if target is None:
            out = func(*args, **kwargs)
            if not func.is_view:  # fresh storage: forget what an earlier tensor at its address saw
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor) and not t.is_meta:
                        self.writes.pop(_ptr(t), None)
                        self.skipped.discard(_ptr(t))
            return out
        bound = {a.name: v for a, v in zip(func._schema.arguments, args, strict=False)}
        bound.update(kwargs)
        write = _Write(
            name if "out" not in kwargs else f"{name}(out=)",
            target.storage_offset(),
            target.numel(),
            target.is_contiguous(),
            {k: v for k, v in bound.items() if not isinstance(v, torch.Tensor)},
        )
        self.writes.setdefault(_ptr(target), []).append(write)
        if name in _FILLS and self.tainted is None:
            self.skipped.add(_ptr(target))
            return target
        # once tainted the recording is void: fill for real, so that code looping on the
        # values (trunc_normal_'s resampling reads its own fill) ends instead of spinning on
        # the skipped fill's garbage
        return func(*args, **kwargs)


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


#: ops that read no values of their inputs
_METADATA_ONLY = {"empty_like", "new_empty", "new_empty_strided", "detach", "alias", "lift_fresh"}


def _law_std(writes: list[_Write], offset: int, numel: int, where: str) -> float:
    """The std of the last full write of ``[offset, offset + numel)``, scaled for later
    partial zero writes; LawUnknown for anything else."""
    std: float | None = None
    zeroed = 0
    for w in writes:
        overlaps = w.offset < offset + numel and offset < w.offset + w.numel
        if not overlaps:
            continue
        full = w.contiguous and w.offset <= offset and w.offset + w.numel >= offset + numel
        if w.op not in _WRITES:
            raise LawUnknown(f"{where}: written by {w.op}")
        if full:
            zeroed = 0
            if w.op == "normal_":
                mean, std = float(w.args.get("mean", 0.0)), float(w.args.get("std", 1.0))
            elif w.op == "uniform_":
                lo, hi = float(w.args.get("from", 0.0)), float(w.args.get("to", 1.0))
                mean, std = (lo + hi) / 2, (hi - lo) / math.sqrt(12.0)
            else:
                value = float(w.args.get("value", 0.0)) if w.op == "fill_" else 0.0
                mean, std = value, 0.0
            if mean != 0.0:
                raise LawUnknown(f"{where}: initialised with mean {mean}, not centred")
        elif w.op in ("zero_", "fill_") and float(w.args.get("value", 0.0)) == 0.0:
            zeroed += w.numel
        else:
            raise LawUnknown(f"{where}: a partial {w.op} write")
    if std is None:
        raise LawUnknown(f"{where}: never initialised")
    if zeroed > MAX_ZEROED_SHARE * numel:
        raise LawUnknown(f"{where}: {zeroed} of {numel} entries zeroed after the init")
    return std * math.sqrt(1.0 - zeroed / numel)


def recorded_laws(space: Any, config: Any, seed: int | None = 0) -> list[MatrixLaw]:
    """The law of every zerolm matrix, from the space's own build with the fills skipped."""
    recorder = _InitRecorder()
    with torch.no_grad(), recorder:
        model = space.build(config, seed=seed)
    if recorder.tainted:
        raise LawUnknown(f"space {getattr(space, 'name', space)}: {recorder.tainted}")
    out = []
    for mat in transformer_matrices(model):
        w = mat.weight
        if w.numel() == 0:
            continue
        writes = recorder.writes.get(_ptr(w), [])
        std = _law_std(writes, w.storage_offset(), w.numel(), mat.name)
        out.append(MatrixLaw(mat.name, mat.group, mat.layer, int(w.shape[0]), int(w.shape[1]), std))
    return out
