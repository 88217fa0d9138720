"""Ways to turn a list of JPEG paths into model-ready batches: the batching technique's variants.

Every source decodes with Pillow and preprocesses with the same function, so the variants
differ only in how work is grouped (one image, manual slices, a DataLoader with or without
worker processes), which is what the batching benchmark compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

SourceKind = Literal["single", "manual", "loader"]


@dataclass(frozen=True)
class ImageProcessorTransform:
    """A transformers image processor as a picklable transform (DataLoader workers may spawn)."""

    processor: Any

    def batch(self, images: list[Image.Image]) -> torch.Tensor:
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.batch([image])[0]


def decode(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


class JpegFiles(Dataset):
    """A map-style dataset: item ``i`` is ``transform(decode(paths[i]))``.

    This is the "proper Dataset" the seed's author said parallel preprocessing needs: workers
    of a DataLoader decode and preprocess items in parallel with the model.
    """

    def __init__(self, paths: Sequence[Path], transform: ImageProcessorTransform) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(decode(self.paths[index]))


def single_images(paths: Sequence[Path], transform: ImageProcessorTransform) -> Iterator[torch.Tensor]:
    for path in paths:
        yield transform.batch([decode(path)])


def manual_batches(
    paths: Sequence[Path], batch: int, transform: ImageProcessorTransform
) -> Iterator[torch.Tensor]:
    """The seed's "manual slicing": the path list cut into consecutive slices of ``batch``."""
    for start in range(0, len(paths), batch):
        yield transform.batch([decode(p) for p in paths[start : start + batch]])


def make_loader(
    paths: Sequence[Path], batch: int, workers: int, transform: ImageProcessorTransform, pin_memory: bool
) -> DataLoader:
    # Persistent workers: worker start-up is paid once (recorded as set-up), not every round,
    # which is how a long-running service or training loop uses a DataLoader.
    return DataLoader(
        JpegFiles(paths, transform),
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        drop_last=False,
    )


@dataclass(frozen=True)
class BatchSource:
    """A re-iterable source of batches: one full pass over the paths per call."""

    kind: SourceKind
    paths: tuple[Path, ...]
    batch: int
    transform: ImageProcessorTransform
    loader: DataLoader | None = None

    def __call__(self) -> Iterator[torch.Tensor]:
        if self.kind == "single":
            return single_images(self.paths, self.transform)
        if self.kind == "manual":
            return manual_batches(self.paths, self.batch, self.transform)
        assert self.loader is not None
        return iter(self.loader)

    def close(self) -> None:
        """Stop persistent DataLoader workers now rather than at interpreter exit."""
        iterator = getattr(self.loader, "_iterator", None) if self.loader is not None else None
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()


def batch_source(
    kind: SourceKind,
    paths: Sequence[Path],
    batch: int,
    transform: ImageProcessorTransform,
    *,
    workers: int = 0,
    pin_memory: bool = False,
) -> BatchSource:
    if kind == "single" and batch != 1:
        raise ValueError(f"the single-image source has batch 1, got {batch}")
    loader = make_loader(paths, batch, workers, transform, pin_memory) if kind == "loader" else None
    return BatchSource(kind, tuple(paths), batch, transform, loader)
