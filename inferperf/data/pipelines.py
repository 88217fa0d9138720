"""The preprocessing pipelines the suite compares, by variant name, and where each stage runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

from inferperf.cases import Device
from inferperf.data.recipes import Recipe

if TYPE_CHECKING:  # the engines import torch; the registry must not
    from inferperf.data.preprocess import Pipeline

Engine = Literal["pillow", "torchvision", "dali"]


@dataclass(frozen=True)
class PipelineSpec:
    variant: str
    engine: Engine
    #: where decode and resize run: "cpu" or "cuda"
    device: Device
    #: how files are read: DataLoader over a Dataset, batched decode_jpeg, DALI file reader or external source
    reader: Literal["dataloader", "decode_jpeg", "file", "external"]
    workers: int = 0

    @property
    def requires(self) -> tuple[str, ...]:
        return ("torch", "dali") if self.engine == "dali" else ("torch",)

    def record(self) -> dict[str, object]:
        return {
            "pipeline": self.variant,
            "engine": self.engine,
            "decode_device": self.device,
            "resize_device": self.device,
            "reader": self.reader,
            "loader_workers": self.workers,
        }


PIPELINES: dict[str, PipelineSpec] = {
    spec.variant: spec
    for spec in (
        PipelineSpec("pillow_w0", "pillow", "cpu", "dataloader", 0),
        PipelineSpec("pillow_w2", "pillow", "cpu", "dataloader", 2),
        PipelineSpec("tv_cpu", "torchvision", "cpu", "decode_jpeg"),
        PipelineSpec("tv_cuda", "torchvision", "cuda", "decode_jpeg"),
        PipelineSpec("dali_cpu_file", "dali", "cpu", "file"),
        PipelineSpec("dali_cpu_ext", "dali", "cpu", "external"),
        PipelineSpec("dali_gpu_file", "dali", "cuda", "file"),
        PipelineSpec("dali_gpu_ext", "dali", "cuda", "external"),
    )
}

#: the CPU reference every pipeline's speedup is measured against
REFERENCE = "pillow_w0"


def build_pipeline(spec: PipelineSpec, paths: Sequence[Path], recipe: Recipe, batch: int, threads: int) -> "Pipeline":
    if spec.engine == "pillow":
        from inferperf.data.preprocess import PillowLoader

        return PillowLoader(paths, recipe, batch, spec.workers)
    if spec.engine == "torchvision":
        from inferperf.data.preprocess import TorchvisionDecode

        return TorchvisionDecode(paths, recipe, batch, spec.device)
    from inferperf.data.dali_pipelines import DaliPipeline

    return DaliPipeline(paths, recipe, batch, "gpu" if spec.device == "cuda" else "cpu", spec.reader, threads)  # type: ignore[arg-type]
