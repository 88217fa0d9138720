"""Quantization: PyTorch's dynamic int8 (``quantize_dynamic``), torchao's int8 and float8 as it recommends per device."""

from __future__ import annotations

import copy

import torch
from torch import nn

from inferperf.variants.prepared import RungUnavailable


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


#: torchao's recommended int8 configuration per device and whether the model is compiled:
#: on the CPU, int8 weights and dynamically quantized int8 activations; on CUDA without
#: compilation, int8 weight-only (its dynamic-activation path runs separate quantize kernels per
#: call in eager mode — torchao's own A100 table shows it at a tenth of bf16's speed, and an H100
#: measured it 25x slower than eager here); compiled, the dynamic-activation configuration
TORCHAO_INT8_CONFIGS: dict[tuple[str, bool], str] = {
    ("cpu", False): "Int8DynamicActivationInt8WeightConfig",
    ("cpu", True): "Int8DynamicActivationInt8WeightConfig",
    ("cuda", False): "Int8WeightOnlyConfig",
    ("cuda", True): "Int8DynamicActivationInt8WeightConfig",
}
#: float8 needs the tensor cores of compute capability 8.9 or newer (Ada, Hopper)
FLOAT8_MIN_CAPABILITY = (8, 9)


def require_torchao_kernels(device: str) -> None:
    """``RungUnavailable`` when torchao's kernels cannot be trusted here (its pairing with this torch)."""
    from inferperf.hardware import torchao_pairing

    pairing = torchao_pairing()
    if pairing is not None and device == "cuda" and not pairing["extensions_loaded"]:
        raise RungUnavailable(
            f"torchao {pairing['torchao']} did not load its compiled kernels with torch {pairing['torch']} "
            f"({pairing['reason']}): its CUDA paths would run on slow fallbacks, measuring the install, not the "
            "technique; install the torchao release built for this torch"
        )


def torchao_int8(model: nn.Module, device: str, compiled: bool) -> tuple[nn.Module, str]:
    """The model with torchao's recommended int8 configuration for ``device`` (and its name)."""
    require_torchao_kernels(device)
    name = TORCHAO_INT8_CONFIGS[device, compiled]
    try:
        import torchao.quantization as ao
    except ImportError as exc:
        raise RungUnavailable(f"torchao int8 quantization is not available: {exc}") from None
    quantized = copy.deepcopy(model)
    ao.quantize_(quantized, getattr(ao, name)())
    return quantized, name


def torchao_float8(model: nn.Module, device: str) -> tuple[nn.Module, str]:
    """float8 dynamic activations and weights, per row (torchao's choice for Hopper-class GPUs)."""
    if device != "cuda":
        raise RungUnavailable("float8 needs a CUDA GPU of compute capability 8.9 or newer")
    capability = torch.cuda.get_device_capability()
    if capability < FLOAT8_MIN_CAPABILITY:
        raise RungUnavailable(f"float8 needs compute capability >= 8.9; this GPU has {capability[0]}.{capability[1]}")
    require_torchao_kernels(device)
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            PerRow,
            quantize_,
        )
    except ImportError as exc:
        raise RungUnavailable(f"torchao float8 quantization is not available: {exc}") from None
    quantized = copy.deepcopy(model)
    quantize_(quantized, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    return quantized, "Float8DynamicActivationFloat8WeightConfig(PerRow)"
