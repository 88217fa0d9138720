"""DALI pipelines (``pipeline_def`` + ``fn.*``) for the preprocessing recipes.

``stage_device`` "cpu" decodes and resizes on the CPU (``device_id=None``: no GPU needed);
"gpu" decodes with the ``mixed`` (nvJPEG) decoder and runs every later operator on the GPU.
Files come either from ``fn.readers.file`` or from ``fn.external_source`` fed with the bytes
from Python. Both are consumed through DALI's PyTorch iterator with the last batch exact: the
file reader pads its last batch and the iterator trims the padding (``LastBatchPolicy.PARTIAL``),
the external source ends its epoch with a smaller batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch

from inferperf.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, Recipe, labels_for

StageDevice = Literal["cpu", "gpu"]
ReaderKind = Literal["file", "external"]
READER_NAME = "Reader"


class EncodedBatches:
    """An external source: one epoch of (encoded JPEG bytes, labels) batches per ``iter()``."""

    def __init__(self, paths: Sequence[Path], batch: int) -> None:
        self.paths, self.batch = list(paths), batch
        self.labels = labels_for(len(paths))
        self._start = 0

    def __iter__(self) -> "EncodedBatches":
        self._start = 0
        return self

    def __next__(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self._start >= len(self.paths):
            raise StopIteration
        stop = min(self._start + self.batch, len(self.paths))
        encoded = [np.fromfile(p, dtype=np.uint8) for p in self.paths[self._start : stop]]
        labels = [self.labels[i : i + 1] for i in range(self._start, stop)]
        self._start = stop
        return encoded, labels


def _build(recipe: Recipe, stage_device: StageDevice, reader: ReaderKind, paths: Sequence[Path], batch: int, threads: int):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=0 if stage_device == "gpu" else None)  # type: ignore[arg-type]
    def preprocess():
        if reader == "file":
            jpegs, labels = fn.readers.file(
                files=[str(p) for p in paths],
                labels=[int(v) for v in labels_for(len(paths))],
                random_shuffle=False,
                pad_last_batch=True,
                name=READER_NAME,
            )
        else:
            jpegs, labels = fn.external_source(
                source=EncodedBatches(paths, batch), num_outputs=2, batch=True, cycle="raise",
                dtype=[types.UINT8, types.INT32],
            )
        images = fn.decoders.image(jpegs, device="mixed" if stage_device == "gpu" else "cpu", output_type=types.RGB)
        if recipe.exact is not None:
            images = fn.resize(images, resize_x=recipe.exact, resize_y=recipe.exact, antialias=True)
        else:
            images = fn.resize(images, resize_shorter=recipe.shorter, antialias=True)
        if recipe.normalize:
            images = fn.crop_mirror_normalize(
                images,
                crop=(recipe.crop, recipe.crop),
                dtype=types.FLOAT,
                output_layout="CHW",
                mean=[255 * m for m in IMAGENET_MEAN],
                std=[255 * s for s in IMAGENET_STD],
            )
        else:
            images = fn.transpose(images, perm=[2, 0, 1])  # HWC -> CHW, stays uint8
        if stage_device == "gpu":
            labels = labels.gpu()
        return images, labels

    pipe = preprocess()
    pipe.build()
    return pipe


class DaliPipeline:
    """A built DALI pipeline behind DALI's PyTorch iterator; one epoch per ``epoch()``."""

    def __init__(
        self,
        paths: Sequence[Path],
        recipe: Recipe,
        batch: int,
        stage_device: StageDevice,
        reader: ReaderKind,
        threads: int,
    ) -> None:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        self.count = len(paths)
        self.pipe = _build(recipe, stage_device, reader, paths, batch, threads)
        common: dict[str, Any] = dict(last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=True)
        if reader == "file":
            self.iterator = DALIGenericIterator([self.pipe], ["images", "labels"], reader_name=READER_NAME, **common)
        else:
            self.iterator = DALIGenericIterator([self.pipe], ["images", "labels"], **common)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for outputs in self.iterator:
            batch = outputs[0]
            yield batch["images"], batch["labels"].reshape(-1).long()

    def close(self) -> None:
        del self.iterator
        del self.pipe
