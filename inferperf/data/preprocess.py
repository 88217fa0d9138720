"""Image preprocessing pipelines that do the same logical work on different engines.

Two recipes, each as Pillow + torchvision transforms, as batched ``torchvision.io.decode_jpeg``
(CPU, or nvJPEG on CUDA) + tensor transforms, and as DALI pipelines (``dali_pipelines``):

- ``resize240``: decode -> resize to 240x240 -> uint8 CHW (the seed's DALI experiment);
- ``imagenet224``: decode -> resize shorter side to 256 -> center crop 224 -> float32 CHW
  normalized with ImageNet mean/std (the heavier recipe of classification models).

Every pipeline yields ``(images, labels)`` batches over the paths in order, the last batch
partial, each image exactly once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from inferperf.data.recipes import (  # noqa: F401 - used by the engines
    IMAGENET_MEAN,
    IMAGENET_STD,
    RECIPES,
    Recipe,
    RecipeName,
)
from inferperf.text import first_line


class Pipeline(Protocol):
    """One epoch per call: ``(images, labels)`` batches, then a clean stop."""

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def close(self) -> None: ...


def labels_for(count: int) -> np.ndarray:
    """Two synthetic classes (the seed trains a 2-class CNN); deterministic per image index."""
    return (np.arange(count) % 2).astype(np.int32)


# --------------------------------------------------------------------------------------------
# Pillow + torchvision transforms in a DataLoader


def pillow_transform(recipe: Recipe):  # -> torchvision.transforms.v2.Compose
    from torchvision.transforms import v2

    if recipe.exact is not None:
        steps = [v2.Resize((recipe.exact, recipe.exact), antialias=True), v2.PILToTensor()]
    else:
        steps = [v2.Resize(recipe.shorter, antialias=True), v2.CenterCrop(recipe.crop), v2.PILToTensor()]
    if recipe.normalize:
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


class _PillowFiles(torch.utils.data.Dataset):
    def __init__(self, paths: Sequence[Path], labels: np.ndarray, transform) -> None:
        self.paths, self.labels, self.transform = list(paths), labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), int(self.labels[index])


class PillowLoader:
    """The CPU reference most people run: Pillow decode + torchvision transforms, DataLoader."""

    def __init__(self, paths: Sequence[Path], recipe: Recipe, batch: int, workers: int) -> None:
        dataset = _PillowFiles(paths, labels_for(len(paths)), pillow_transform(recipe))
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch, shuffle=False, num_workers=workers, persistent_workers=workers > 0
        )

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader)

    def close(self) -> None:
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()


# --------------------------------------------------------------------------------------------
# torchvision.io.decode_jpeg, batched, on CPU or CUDA (nvJPEG)


def tensor_transform(images: list[torch.Tensor], recipe: Recipe) -> torch.Tensor:
    """Resize/crop/normalize decoded uint8 CHW images (any device) into one batch."""
    from torchvision.transforms.v2 import functional as F

    out = []
    for image in images:
        if recipe.exact is not None:
            image = F.resize(image, [recipe.exact, recipe.exact], antialias=True)
        else:
            image = F.center_crop(F.resize(image, recipe.shorter, antialias=True), [recipe.crop, recipe.crop])
        out.append(image)
    batch = torch.stack(out)
    if recipe.normalize:
        batch = F.normalize(batch.float().div_(255), IMAGENET_MEAN, IMAGENET_STD)
    return batch


class TorchvisionDecode:
    """Read the files' bytes, decode the whole batch in one ``decode_jpeg`` call, transform.

    torchvision 0.29 deprecates its image decoding in favour of TorchCodec and warns on every
    call; the warning is kept once in ``warnings`` (and in the record) instead of per batch.
    """

    def __init__(self, paths: Sequence[Path], recipe: Recipe, batch: int, device: str) -> None:
        self.paths, self.recipe, self.batch, self.device = list(paths), recipe, batch, device
        self.labels = torch.from_numpy(labels_for(len(paths)).astype(np.int64))
        self.warnings: list[str] = []

    def _read_and_decode(self, paths: Sequence[Path]) -> list[torch.Tensor]:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            encoded = [read_file(str(p)) for p in paths]
            images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device)
        for item in caught:
            message = f"{item.category.__name__}: {first_line(item.message)}"
            if message not in self.warnings:
                self.warnings.append(message)
        return images

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.paths), self.batch):
            chunk = self.paths[start : start + self.batch]
            images = self._read_and_decode(chunk)
            labels = self.labels[start : start + len(chunk)].to(self.device)
            yield tensor_transform(images, self.recipe), labels

    def close(self) -> None:
        return None
