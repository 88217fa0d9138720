"""The optimization ladder (SEEDS.md §4): the seed's rungs, then the methods that replaced them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from inferperf.cases import DEVICES, Device
from inferperf.variants import Prepared
from inferperf.variants.compiled import (
    prepare_ao_int8,
    prepare_ao_int8_compile,
    prepare_aoti,
    prepare_bf16,
    prepare_compile,
    prepare_fp16,
)
from inferperf.variants.executorch import prepare_executorch
from inferperf.variants.onnx import prepare_ort, prepare_ort_qdyn
from inferperf.variants.torchscript import (
    prepare_lite,
    prepare_mobile,
    prepare_qdyn_script,
    prepare_script,
)

PrepareFn = Callable[[nn.Module, torch.Tensor, Path, str], Prepared]


def prepare_eager(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    return Prepared(model, None, 0.0)  # model_bytes: the checkpoint's size, filled in by the caller


@dataclass(frozen=True)
class Rung:
    name: str
    dtype: str
    devices: tuple[Device, ...]
    prepare: PrepareFn
    requires: tuple[str, ...] = ("torch",)
    #: compiled for the example's shape: prepared once per batch size, not once per model
    per_batch: bool = False


CPU_ONLY: tuple[Device, ...] = ("cpu",)

RUNGS: dict[str, Rung] = {
    rung.name: rung
    for rung in (
        # the seed's ladder
        Rung("eager", "fp32", DEVICES, prepare_eager),
        Rung("script", "fp32", DEVICES, prepare_script),
        Rung("qdyn_script", "int8dyn", CPU_ONLY, prepare_qdyn_script),
        Rung("qdyn_mobile", "int8dyn", CPU_ONLY, prepare_mobile),
        Rung("qdyn_lite", "int8dyn", CPU_ONLY, prepare_lite),
        # today's methods
        Rung("compile", "fp32", DEVICES, prepare_compile, per_batch=True),
        Rung("bf16", "bf16", DEVICES, prepare_bf16),
        Rung("fp16", "fp16", ("cuda",), prepare_fp16),
        Rung("aoti", "fp32", DEVICES, prepare_aoti, per_batch=True),
        Rung("ao_int8", "int8", DEVICES, prepare_ao_int8, requires=("torch", "torchao")),
        Rung("ao_int8_compile", "int8", DEVICES, prepare_ao_int8_compile, requires=("torch", "torchao"), per_batch=True),
        Rung("ort", "fp32", DEVICES, prepare_ort, requires=("torch", "onnx")),
        Rung("ort_qdyn", "int8dyn", CPU_ONLY, prepare_ort_qdyn, requires=("torch", "onnx")),
        Rung("executorch", "fp32", CPU_ONLY, prepare_executorch, per_batch=True),
    )
}

BASELINE = "eager"


@dataclass(frozen=True)
class Agreement:
    """How closely a rung's logits follow eager fp32 on the same images."""

    cosine: float
    top1_match: float
    images: int

    def record(self) -> dict[str, float | int]:
        return {"cosine": self.cosine, "top1_match": self.top1_match, "images": self.images}


def agreement(reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    reference, candidate = reference.float().cpu(), candidate.float().cpu()
    cosine = torch.nn.functional.cosine_similarity(reference, candidate, dim=-1).mean().item()
    top1 = (reference.argmax(-1) == candidate.argmax(-1)).float().mean().item()
    return Agreement(cosine, top1, len(reference))


def logits_in_chunks(call: Callable[[torch.Tensor], object], images: torch.Tensor, batch: int) -> torch.Tensor:
    """Run ``images`` through ``call`` ``batch`` at a time (compiled rungs accept one shape)."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            out = call(images[start : start + batch])
            outputs.append(out if isinstance(out, torch.Tensor) else torch.as_tensor(out))
    return torch.cat([o.float().cpu() for o in outputs])
