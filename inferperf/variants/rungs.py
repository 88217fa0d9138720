"""The registries of variants, importable without torch: what the case lists and ids need.

A ``Rung`` names a step of the optimization ladder (technique 4) and the function that prepares
it, resolved only when a case runs (so collecting the suite imports no framework). A ``Precision``
names how the pipeline's crop scorer is transformed (technique 5). Both are dataclasses naming
their parameters; nothing is parsed back out of a variant's name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from inferperf.cases import DEVICES, Device

CPU_ONLY: tuple[Device, ...] = ("cpu",)


@dataclass(frozen=True)
class Rung:
    name: str
    dtype: str
    devices: tuple[Device, ...]
    #: ``module:function`` of the preparation, ``(model, example, workdir, device) -> Prepared``
    prepare_path: str
    requires: tuple[str, ...] = ("torch",)
    #: compiled for the example's shape: prepared once per batch size, not once per model
    per_batch: bool = False

    @property
    def prepare(self) -> Callable[..., Any]:
        module, _, function = self.prepare_path.partition(":")
        return getattr(importlib.import_module(f"inferperf.variants.{module}"), function)


RUNGS: dict[str, Rung] = {
    rung.name: rung
    for rung in (
        # the seed's ladder
        Rung("eager", "fp32", DEVICES, "ladder:prepare_eager"),
        Rung("script", "fp32", DEVICES, "torchscript:prepare_script"),
        Rung("qdyn_script", "int8dyn", CPU_ONLY, "torchscript:prepare_qdyn_script"),
        Rung("qdyn_mobile", "int8dyn", CPU_ONLY, "torchscript:prepare_mobile"),
        Rung("qdyn_lite", "int8dyn", CPU_ONLY, "torchscript:prepare_lite"),
        # today's methods
        Rung("compile", "fp32", DEVICES, "compiled:prepare_compile", per_batch=True),
        Rung("bf16", "bf16", DEVICES, "compiled:prepare_bf16"),
        Rung("fp16", "fp16", ("cuda",), "compiled:prepare_fp16"),
        Rung("aoti", "fp32", DEVICES, "compiled:prepare_aoti", per_batch=True),
        Rung("ao_int8", "int8", DEVICES, "compiled:prepare_ao_int8", requires=("torch", "torchao")),
        Rung("ao_int8_compile", "int8", DEVICES, "compiled:prepare_ao_int8_compile", requires=("torch", "torchao"), per_batch=True),
        Rung("ao_fp8", "fp8", ("cuda",), "compiled:prepare_ao_fp8", requires=("torch", "torchao")),
        Rung("ort", "fp32", DEVICES, "onnx:prepare_ort", requires=("torch", "onnx")),
        Rung("ort_qdyn", "int8dyn", CPU_ONLY, "onnx:prepare_ort_qdyn", requires=("torch", "onnx")),
        Rung("executorch", "fp32", CPU_ONLY, "executorch:prepare_executorch", per_batch=True),
    )
}

#: the rung every other is judged against
BASELINE = "eager"


@dataclass(frozen=True)
class Precision:
    """How the pipeline's crop scorer (its image tower) is transformed."""

    name: str
    dtype: str
    devices: tuple[Device, ...]
    requires: tuple[str, ...] = ("torch",)
    #: ``torch.compile`` the embedding (compilation happens at the first call: set-up, not timing)
    compiled: bool = False


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", "fp32", DEVICES),
        Precision("qdyn", "int8dyn", CPU_ONLY),  # quantize_dynamic of nn.Linear, qint8, as published
        Precision("ao_int8", "int8", DEVICES, ("torch", "torchao")),
        Precision("ao_int8_compile", "int8", DEVICES, ("torch", "torchao"), compiled=True),
        Precision("bf16", "bf16", DEVICES),
    )
}


@dataclass(frozen=True)
class ScoringVariant:
    """A pipeline variant: a precision, scoring one crop per forward (as published) or all at once."""

    precision: Precision
    batched: bool

    @property
    def name(self) -> str:
        return f"{self.precision.name}_{'batched' if self.batched else 'percrop'}"


SCORING_VARIANTS: dict[str, ScoringVariant] = {
    v.name: v for p in PRECISIONS.values() for v in (ScoringVariant(p, False), ScoringVariant(p, True))
}
