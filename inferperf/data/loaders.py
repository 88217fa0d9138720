"""Ways to turn a list of JPEG paths into model-ready batches: the batching technique's variants.

The CPU sources decode with Pillow and preprocess with the model's own image processor, so they
differ only in how work is grouped (one image, manual slices, a DataLoader with or without
worker processes). ``tensor_pre`` does the same preprocessing on tensors instead — batched
``decode_jpeg`` (nvJPEG on CUDA), resize, crop and normalize on the device — so batching can be
measured where preprocessing is not the bottleneck; its agreement with the image processor is
recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from inferperf.data.sources import SourceKind


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
class TensorPreprocess:
    """The image processor's resize (shortest edge, bicubic), center crop, rescale and normalize, on tensors.

    Read from the processor itself, so it follows whatever checkpoint is loaded.
    """

    shortest_edge: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: str

    @classmethod
    def of(cls, processor: Any, device: str) -> "TensorPreprocess":
        size = processor.size.get("shortest_edge") or min(processor.size.values())
        crop = processor.crop_size
        return cls(int(size), int(crop["height"]), tuple(processor.image_mean), tuple(processor.image_std), device)

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        resized = [
            F.center_crop(F.resize(image, self.shortest_edge, interpolation=InterpolationMode.BICUBIC, antialias=True), self.crop)
            for image in images
        ]
        batch = torch.stack(resized).float().div_(255.0)
        mean = torch.tensor(self.mean, device=batch.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=batch.device).view(1, -1, 1, 1)
        return (batch - mean) / std

    def batches(self, paths: Sequence[Path], batch: int) -> Iterator[torch.Tensor]:
        """Per batch: read the files, decode them together (nvJPEG on CUDA), preprocess on the device."""
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        for start in range(0, len(paths), batch):
            data = [read_file(str(p)) for p in paths[start : start + batch]]
            yield self(decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device))


@dataclass(frozen=True)
class BatchSource:
    """A re-iterable source of batches: one full pass over the paths per call."""

    kind: SourceKind
    paths: tuple[Path, ...]
    batch: int
    transform: ImageProcessorTransform
    loader: DataLoader | None = None
    tensor_pre: TensorPreprocess | None = None

    def __call__(self) -> Iterator[torch.Tensor]:
        if self.kind == "single":
            return single_images(self.paths, self.transform)
        if self.kind == "manual":
            return manual_batches(self.paths, self.batch, self.transform)
        if self.kind == "tensor_pre":
            assert self.tensor_pre is not None
            return self.tensor_pre.batches(self.paths, self.batch)
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
    device: str = "cpu",
) -> BatchSource:
    if kind == "single" and batch != 1:
        raise ValueError(f"the single-image source has batch 1, got {batch}")
    loader = make_loader(paths, batch, workers, transform, pin_memory) if kind == "loader" else None
    tensor_pre = TensorPreprocess.of(transform.processor, device) if kind == "tensor_pre" else None
    return BatchSource(kind, tuple(paths), batch, transform, loader, tensor_pre)


def preprocessing_agreement(
    paths: Sequence[Path],
    transform: ImageProcessorTransform,
    device: str,
    classify: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float | int]:
    """How far ``tensor_pre`` on ``device`` is from the image processor on the same images: pixel
    values, and with ``classify`` (a batch -> label probabilities) the probabilities they lead to."""
    reference = transform.batch([decode(p) for p in paths])
    candidate = next(TensorPreprocess.of(transform.processor, device).batches(paths, len(paths)))
    difference = (reference - candidate.float().cpu()).abs()
    agreement: dict[str, float | int] = {
        "pixel_mean_abs_diff": difference.mean().item(), "pixel_max_abs_diff": difference.max().item(), "images": len(paths),
    }
    if classify is not None:
        with torch.inference_mode():
            expected, got = classify(reference).float().cpu(), classify(candidate).float().cpu()
        agreement["probs_max_abs_diff"] = (expected - got).abs().max().item()
        agreement["top1_match"] = (expected.argmax(-1) == got.argmax(-1)).float().mean().item()
    return agreement
