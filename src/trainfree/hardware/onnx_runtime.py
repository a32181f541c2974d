"""The ONNX Runtime backend of the profiler (``--backend onnx``): the model is exported once
(TorchScript exporter, opset 17) and an ONNX Runtime CPU session with the same thread count is
measured the way the torch backend is (peak memory of one cold run, then the timed runs).
An operator the exporter cannot express makes the architecture infeasible, with the reason."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch

from trainfree.hardware.memory_probes import cpu_peak_probe
from trainfree.hardware.profiler import HardwareSettings, Measurement, _memory_then_latency


class _Inference(torch.nn.Module):
    """Wraps ``space.inference`` as a module's forward, for the ONNX exporter."""

    def __init__(self, space: Any, model: torch.nn.Module) -> None:
        super().__init__()
        self.space, self.model = space, model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.space.inference(self.model, ids)


def measure_onnx(
    space: Any,
    model: torch.nn.Module,
    ids: torch.Tensor,
    settings: HardwareSettings,
    weights_mb: float,
    t_setup: float,
) -> Measurement:
    import warnings

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="trainfree-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Inference(space, model),
                    (ids,),
                    path,
                    dynamo=False,
                    input_names=["ids"],
                    output_names=["out"],
                    opset_version=17,
                )
        except Exception as exc:  # an operator the exporter cannot handle: infeasible, not fatal
            return Measurement(ok=False, error=f"ONNX export failed: {type(exc).__name__}: {exc}"[:500])
        del model
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {"ids": ids.numpy()}
    method, start, stop = cpu_peak_probe()
    return _memory_then_latency(
        lambda: session.run(None, feed),
        lambda: None,
        (f"{method} (onnxruntime)", start, stop),
        settings,
        weights_mb,
        time.perf_counter() - t_setup,
    )
