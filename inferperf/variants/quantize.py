"""Quantization: PyTorch's dynamic int8 (``quantize_dynamic``) and torchao's int8 dynamic."""

from __future__ import annotations

import copy

import torch
from torch import nn

from inferperf.variants import RungUnavailable


def quantize_linear_dynamic(model: nn.Module, engine: str = "x86") -> nn.Module:
    """``nn.Linear`` layers to dynamic int8 (qint8 weights, activations quantized per call).

    Embeddings, norms and attention's own matmuls stay fp32, as in the seed experiments.
    """
    if engine not in torch.backends.quantized.supported_engines:
        raise RungUnavailable(
            f"quantized engine {engine!r} not in this torch build ({torch.backends.quantized.supported_engines})"
        )
    torch.backends.quantized.engine = engine
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        raise RungUnavailable(f"torch.ao.quantization.quantize_dynamic is not available: {exc}") from None
    return quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def torchao_int8_dynamic(model: nn.Module) -> nn.Module:
    """torchao: int8 weights and dynamically quantized int8 activations for Linear layers."""
    try:
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            quantize_,
        )
    except ImportError as exc:
        raise RungUnavailable(f"torchao int8 dynamic quantization is not available: {exc}") from None
    quantized = copy.deepcopy(model)
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return quantized
