"""ONNX Runtime: the model exported to ONNX, run fp32 and after ORT's dynamic int8 quantization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from inferperf.text import error_line
from inferperf.variants.prepared import (
    Prepared,
    RungUnavailable,
    Stopwatch,
    captured_warnings,
    file_bytes,
)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, warned: list[str]) -> Path:
    with captured_warnings(warned):
        try:
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(
                model, (example,), str(path), input_names=["input"], output_names=["logits"],
                dynamo=True, dynamic_shapes=({0: batch},), external_data=False,
            )
        except Exception as exc:
            raise RungUnavailable(f"torch.onnx.export failed: {error_line(exc)}") from None
    return path


def _session(path: Path, device: str):
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RungUnavailable("onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same threads as torch (--threads)
    session = ort.InferenceSession(str(path), options, providers=providers)

    def call(batch: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run(None, {"input": batch.detach().cpu().numpy()})
        return torch.from_numpy(np.asarray(logits))

    return call


def prepare_ort(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    path = export_onnx(model, example, workdir / "model.onnx", warned)
    return Prepared(_session(path, device), file_bytes(path), clock.seconds(), warnings=warned)


def prepare_ort_qdyn(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    fp32 = export_onnx(model, example, workdir / "model.onnx", warned)
    quantized = workdir / "model.qdyn.onnx"
    with captured_warnings(warned):
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8)
        except Exception as exc:
            raise RungUnavailable(f"onnxruntime dynamic quantization failed: {error_line(exc)}") from None
    return Prepared(_session(quantized, device), file_bytes(quantized), clock.seconds(), warnings=warned)
