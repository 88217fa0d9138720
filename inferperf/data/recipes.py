"""The preprocessing recipes every engine implements, importable without torch (case lists need them).

- ``resize240``: decode -> resize to 240x240 -> uint8 CHW (the seed's DALI experiment);
- ``imagenet224``: decode -> resize shorter side to 256 -> center crop 224 -> float32 CHW
  normalized with ImageNet mean/std (the heavier recipe of classification models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RecipeName = Literal["resize240", "imagenet224"]


@dataclass(frozen=True)
class Recipe:
    name: RecipeName
    #: exact output size (square) when the aspect ratio is not kept
    exact: int | None = None
    #: resize the shorter side to this, then center-crop ``crop``
    shorter: int | None = None
    crop: int | None = None
    normalize: bool = False

    @property
    def dtype(self) -> Any:
        """The torch dtype of the output (imports torch)."""
        import torch

        return torch.float32 if self.normalize else torch.uint8

    @property
    def dtype_name(self) -> str:
        return "fp32" if self.normalize else "uint8"

    @property
    def out_size(self) -> int:
        size = self.exact or self.crop
        assert size is not None
        return size


RECIPES: dict[RecipeName, Recipe] = {
    "resize240": Recipe("resize240", exact=240),
    "imagenet224": Recipe("imagenet224", shorter=256, crop=224, normalize=True),
}
