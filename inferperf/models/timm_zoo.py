"""PyTorch counterparts of the Keras zoo from timm (``zoo_specs.ZOO``), with the same uint8-in, classes-out contract."""

from __future__ import annotations

import torch
from torch import nn


class ClassifyUint8(nn.Module):
    """uint8 NHWC images -> float /255 NCHW -> model -> argmax classes, like the SavedModels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scaled = images.permute(0, 3, 1, 2).float().div(255)
        return self.model(scaled).argmax(dim=-1).to(torch.int32)
