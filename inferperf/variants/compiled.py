"""Today's methods: torch.compile, low precision, torch.export + AOTInductor, torchao int8."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from inferperf.text import error_line
from inferperf.variants import (
    Prepared,
    RungUnavailable,
    Stopwatch,
    captured_warnings,
    file_bytes,
    state_dict_bytes,
)
from inferperf.variants.quantize import torchao_int8_dynamic


def _compile(model: nn.Module, example: torch.Tensor, warned: list[str]):
    """Compile and run once: compilation happens at the first call, so it is set-up, not timing."""
    with captured_warnings(warned):
        compiled = torch.compile(model)
        try:
            with torch.inference_mode():
                compiled(example)
        except Exception as exc:  # inductor needs a working C++ compiler on CPU, Triton on CUDA
            raise RungUnavailable(f"torch.compile failed: {error_line(exc)}") from None
    return compiled


def prepare_compile(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), []
    compiled = _compile(model, example, warned)
    return Prepared(compiled, state_dict_bytes(model, workdir / "state.pt"), clock.seconds(), warnings=warned)


def _low_precision(dtype: torch.dtype):
    def prepare(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
        clock = Stopwatch()
        converted = copy.deepcopy(model).to(dtype)
        return Prepared(converted, state_dict_bytes(converted, workdir / "state.pt"), clock.seconds(), input_dtype=dtype)

    return prepare


prepare_bf16 = _low_precision(torch.bfloat16)
prepare_fp16 = _low_precision(torch.float16)


def prepare_aoti(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    """torch.export, then AOTInductor compiles the graph into a package loaded without Python tracing."""
    clock, warned = Stopwatch(), []
    try:
        from torch._inductor import aoti_compile_and_package, aoti_load_package
    except ImportError as exc:
        raise RungUnavailable(f"AOTInductor is not available in this torch: {exc}") from None
    with captured_warnings(warned):
        try:
            exported = torch.export.export(model, (example,))
            package = aoti_compile_and_package(exported, package_path=str(workdir / "model.pt2"))
            runner = aoti_load_package(package)
        except Exception as exc:
            raise RungUnavailable(f"torch.export + AOTInductor failed: {error_line(exc)}") from None
    return Prepared(runner, file_bytes(Path(package)), clock.seconds(), warnings=warned)


def prepare_ao_int8(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), []
    with captured_warnings(warned):
        quantized = torchao_int8_dynamic(model)
    return Prepared(quantized, state_dict_bytes(quantized, workdir / "state.pt"), clock.seconds(), warnings=warned)


def prepare_ao_int8_compile(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), []
    with captured_warnings(warned):
        quantized = torchao_int8_dynamic(model)
    compiled = _compile(quantized, example, warned)
    return Prepared(compiled, state_dict_bytes(quantized, workdir / "state.pt"), clock.seconds(), warnings=warned)
