"""The ONNX Runtime backend (``--backend onnx``): the model is exported once (TorchScript
exporter, opset 17) and an ONNX Runtime CPU session with the same thread count is measured the
way the torch backend is (peak memory of one cold run, then the timed runs). An operator the
exporter cannot express makes the architecture infeasible, with the reason. Generation
(``mode="generate"``) is measured in PyTorch, as the torch backend measures it."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from trainfree.hardware.backends._forward import ForwardBackend, memory_then_latency
from trainfree.hardware.measurement import Measurement
from trainfree.hardware.settings import HardwareSettings, register_backend


@register_backend("onnx")
class OnnxBackend(ForwardBackend):
    """ONNX Runtime's CPU execution provider."""

    title = "ONNX Runtime"
    order = 1

    def measure_forward(
        self, space: Any, model: Any, weights_mb: float, ids: Any, settings: HardwareSettings, t_setup: float
    ) -> Measurement:
        return measure_onnx(space, model, ids, settings, weights_mb, t_setup)


def _inference_module(space: Any, model: Any) -> Any:
    """``space.inference`` as a module's forward, for the ONNX exporter."""
    import torch

    class _Inference(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.space, self.model = space, model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.space.inference(self.model, ids)

    return _Inference()


def measure_onnx(
    space: Any,
    model: Any,
    ids: Any,
    settings: HardwareSettings,
    weights_mb: float,
    t_setup: float,
) -> Measurement:
    import warnings

    import onnxruntime as ort
    import torch

    from trainfree.hardware.memory_probes import cpu_peak_probe

    with tempfile.TemporaryDirectory(prefix="trainfree-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _inference_module(space, model),
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
    return memory_then_latency(
        lambda: session.run(None, feed),
        lambda: None,
        (f"{method} (onnxruntime)", start, stop),
        settings,
        weights_mb,
        time.perf_counter() - t_setup,
    )
