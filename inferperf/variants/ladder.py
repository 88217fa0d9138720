"""The optimization ladder (docs/experiments.md#4): eager preparation and agreement with eager.

The rungs themselves are registered, torch-free, in ``inferperf.variants.rungs``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from inferperf.variants.prepared import Prepared


def prepare_eager(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    return Prepared(model, None, 0.0)  # model_bytes: the checkpoint's size, filled in by the caller


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
