"""The variants of text generation (technique 6), importable without torch: what the case lists need.

Each ``GenerationVariant`` names its parameters (cache, compile, weights dtype, torchao config,
how requests are batched, speculation); ``inferperf.variants.generation`` turns one into a ready
generator when a case runs. Nothing is parsed back out of a variant's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inferperf.cases import DEVICES, Device

Cache = Literal["dynamic", "static"]
WeightsDtype = Literal["fp32", "bf16", "fp16"]
Quant = Literal["int8wo", "int8dyn", "int4wo"]
#: how a round's requests are run: one ``generate`` over a batch of equal-length prompts,
#: one left-padded ``generate`` over mixed lengths, or continuous batching (``generate_batch``'s manager)
Batching = Literal["fixed", "padded", "continuous"]
Speculation = Literal["assisted", "prompt_lookup"]


@dataclass(frozen=True)
class GenerationVariant:
    name: str
    dtype: str
    devices: tuple[Device, ...]
    cache: Cache = "dynamic"
    compiled: bool = False
    weights: WeightsDtype = "fp32"
    quant: Quant | None = None
    batching: Batching = "fixed"
    speculation: Speculation | None = None
    requires: tuple[str, ...] = ("torch",)


GENERATION_VARIANTS: dict[str, GenerationVariant] = {
    v.name: v
    for v in (
        GenerationVariant("eager", "fp32", DEVICES),
        GenerationVariant("static", "fp32", DEVICES, cache="static"),
        GenerationVariant("static_compile", "fp32", DEVICES, cache="static", compiled=True),
        GenerationVariant("bf16", "bf16", DEVICES, weights="bf16"),
        GenerationVariant("fp16", "fp16", ("cuda",), weights="fp16"),
        GenerationVariant("ao_int8wo", "int8wo", DEVICES, quant="int8wo", requires=("torch", "torchao")),
        GenerationVariant("ao_int8dyn", "int8", DEVICES, quant="int8dyn", requires=("torch", "torchao")),
        GenerationVariant("ao_int4wo", "int4wo", DEVICES, quant="int4wo", requires=("torch", "torchao")),
        GenerationVariant("padded", "fp32", DEVICES, batching="padded"),
        GenerationVariant("continuous", "fp32", DEVICES, batching="continuous"),
        GenerationVariant("assisted", "fp32", DEVICES, speculation="assisted"),
        GenerationVariant("prompt_lookup", "fp32", DEVICES, speculation="prompt_lookup"),
    )
}

#: the variant every other is judged against (speedups, agreement)
BASELINE = "eager"
#: mixed-length batches are judged against the padded batch, the way a user batches without a scheduler
MIXED_BASELINE = "padded"
