"""PyTorch counterparts of the Keras zoo from timm, with the same uint8-in, classes-out contract."""

from __future__ import annotations

import torch
from torch import nn

#: key -> (timm architecture, native input size): the Keras zoo's models, same sizes
TIMM_ZOO: dict[str, tuple[str, int]] = {
    "vgg16": ("vgg16", 224),
    "mobilenetv2": ("mobilenetv2_100", 224),
    "resnet50": ("resnet50", 224),
    "inceptionv3": ("inception_v3", 299),
    "xception": ("legacy_xception", 299),
    "efficientnetb0": ("efficientnet_b0", 224),
    "efficientnetb1": ("efficientnet_b1", 240),
    "efficientnetb2": ("efficientnet_b2", 260),
    "efficientnetb3": ("efficientnet_b3", 300),
    "efficientnetb4": ("efficientnet_b4", 380),
    "efficientnetb5": ("efficientnet_b5", 456),
    "efficientnetb6": ("efficientnet_b6", 528),
    "efficientnetb7": ("efficientnet_b7", 600),
}


class ClassifyUint8(nn.Module):
    """uint8 NHWC images -> float /255 NCHW -> model -> argmax classes, like the SavedModels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scaled = images.permute(0, 3, 1, 2).float().div(255)
        return self.model(scaled).argmax(dim=-1).to(torch.int32)
