"""``--format onnx``: the inference graph the profiler times, as one ONNX file.

The graph is ``space.inference(model, input_ids)``: log-probabilities ``[B, T, n_token]``
for the LTS language models, the last hidden state ``[B, T, H]`` for FlexiBERT. Batch and
sequence axes are dynamic. Two exporters are needed:

- LTS (``gpt2``, ``transxl``): the TorchScript exporter, as ``trainfree profile --backend
  onnx`` uses. The adaptive embedding gathers each cluster's tokens with data-dependent
  shapes, which ``torch.export`` refuses; the tracer records the gather for any input as long
  as every cluster holds a token while tracing, so the example input contains the first
  token of every cluster.
- FlexiBERT: the ``torch.export``-based exporter (needs ``onnxscript``), the only one that
  converts the FFT of the LT-DFT/LT-DCT mixers and the unfold of the DSC convolutions.

Every export is checked with ONNX Runtime on two input shapes other than the traced one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainfree.errors import TrainfreeError

#: ONNX Runtime vs PyTorch tolerance. FFT-based mixers (LT-DFT/DCT) differ by ~2e-5 in
#: float32 (ONNX's DFT and PyTorch's pocketfft round differently); everything else ~1e-6.
ONNX_ATOL = 1e-4
#: opsets: the TorchScript exporter (as the profiler), the torch.export one (18 at least)
OPSET_TORCHSCRIPT, OPSET_DYNAMO = 17, 18


class _Inference(torch.nn.Module):
    """``space.inference`` as a module's forward, for the exporters."""

    def __init__(self, space: Any, model: torch.nn.Module) -> None:
        super().__init__()
        self.space, self.model = space, model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.space.inference(self.model, input_ids)


def example_ids(space: Any, config: Any, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    """Random token ids, with the first token of every adaptive cluster placed in front so
    that a trace sees every cluster."""
    ids = space.example_input(config, batch, seq_len, seed=seed)
    cutoffs = getattr(config, "cutoffs", None)
    if cutoffs:
        starts = torch.tensor([0, *cutoffs[:-1]][: ids.numel()])
        ids.view(-1)[: len(starts)] = starts
    return ids


def _shapes(space: Any, config: Any) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    longest = space.max_seq_len(config)
    traced = (2, min(16, longest))
    checks = [(3, min(7, longest)), (1, min(24, longest))]
    return traced, checks


def export_onnx(space: Any, config: Any, model: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Write ``space.inference`` of ``model`` to ``path`` and check it with ONNX Runtime.
    Returns what was checked (shapes, max abs difference, exporter)."""
    import onnxruntime  # noqa: F401 - missing: fail before exporting, not after

    model = model.eval()
    wrapper = _Inference(space, model).eval()
    (b, t), checks = _shapes(space, config)
    ids = example_ids(space, config, b, t, seed=0)
    lts = hasattr(config, "cutoffs")
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" notes of the exporter
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if lts:
                _export_torchscript(wrapper, ids, path)
            else:
                _export_dynamo(wrapper, ids, path, space.max_seq_len(config))
    except TrainfreeError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrainfreeError(f"ONNX export failed: {type(exc).__name__}: {first}") from None
    finally:
        quiet.setLevel(level)
    worst = _check(space, config, wrapper, path, checks)
    return {
        "exporter": "torchscript" if lts else "dynamo",
        "opset": OPSET_TORCHSCRIPT if lts else OPSET_DYNAMO,
        "input": "input_ids int64 [batch, sequence]",
        "output": "log-probabilities [batch, sequence, vocab]"
        if lts
        else "last hidden state [batch, sequence, hidden]",
        "checked_shapes": [list(s) for s in checks],
        "max_abs_diff": worst,
    }


def _export_torchscript(wrapper: torch.nn.Module, ids: torch.Tensor, path: Path) -> None:
    """The LTS models: traced (the adaptive embedding's data-dependent gather, which
    ``torch.export`` refuses), batch and sequence axes declared dynamic."""
    torch.onnx.export(
        wrapper,
        (ids,),
        str(path),
        dynamo=False,
        input_names=["input_ids"],
        output_names=["output"],
        opset_version=OPSET_TORCHSCRIPT,
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "output": {0: "batch", 1: "sequence"},
        },
    )


def _export_dynamo(wrapper: torch.nn.Module, ids: torch.Tensor, path: Path, longest: int) -> None:
    """FlexiBERT: ``torch.export`` (FFT mixers, unfold convolutions), sequences up to ``longest``."""
    _require_onnxscript()
    seq = torch.export.Dim("sequence", min=1, max=longest)
    torch.onnx.export(
        wrapper,
        (ids,),
        str(path),
        dynamo=True,
        input_names=["input_ids"],
        output_names=["output"],
        opset_version=OPSET_DYNAMO,
        dynamic_shapes={"input_ids": {0: torch.export.Dim("batch", min=1), 1: seq}},
        verbose=False,
        optimize=True,
        external_data=False,  # one self-contained file (FlexiBERT models are small)
    )


def _check(
    space: Any, config: Any, wrapper: torch.nn.Module, path: Path, checks: list[tuple[int, int]]
) -> float:
    """The largest difference between ONNX Runtime and PyTorch on the ``checks`` shapes (not the
    traced one, so that a shape frozen into the graph shows); raises beyond :data:`ONNX_ATOL`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, (cb, ct) in enumerate(checks):
        x = example_ids(space, config, cb, ct, seed=1 + i)
        with torch.no_grad():
            ref = wrapper(x).numpy()
        got = session.run(None, {"input_ids": x.numpy()})[0]
        if got.shape != ref.shape:
            raise TrainfreeError(
                f"ONNX check failed: output {got.shape} for input {tuple(x.shape)}, expected {ref.shape}"
            )
        worst = max(worst, float(np.abs(got - ref).max()))
    if not worst <= ONNX_ATOL:
        raise TrainfreeError(
            f"ONNX check failed: ONNX Runtime differs from PyTorch by {worst:.2e} (> {ONNX_ATOL})"
        )
    return worst


def _require_onnxscript() -> None:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise TrainfreeError(
            "ONNX export of FlexiBERT needs onnxscript (torch's exporter for FFT and unfold): "
            "pip install 'trainfree[hf]'"
        ) from None
