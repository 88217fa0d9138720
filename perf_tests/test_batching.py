"""Technique 1 (docs/experiments.md#1): batching an image-text model, end to end.

Zero-shot CLIP over N real JPEGs: decode, preprocess, image tower, ``softmax(img @ text.T)``.
Variants: one image per forward (the baseline), manual slicing into batches, and a DataLoader
over a Dataset that decodes and preprocesses, without and with worker processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Literal

import pytest

from inferperf.cases import DEVICES, Case, Device, Tier
from inferperf.data.sources import SourceKind
from inferperf.measure import StageClock, Workload, drain
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

TECHNIQUE = "batching"
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=3, warmup_rounds=1), "standard": Budget(5, 1)}
MODEL: dict[Tier, str] = {"quick": "clip_t16", "standard": "clip_b16"}
#: images per round: the seed's 1000 on GPU at standard, fewer where a round would take minutes
IMAGES: dict[tuple[Tier, Device], int] = {
    ("quick", "cpu"): 32,
    ("quick", "cuda"): 256,
    ("standard", "cpu"): 200,
    ("standard", "cuda"): 1000,
}
BATCHES: dict[Tier, tuple[int, ...]] = {"quick": (8, 32), "standard": (8, 32, 50, 64)}
#: images whose preprocessing on the device is checked against the image processor's
AGREEMENT_IMAGES = 8


@dataclass(frozen=True)
class BatchingVariant:
    """How images reach the model: one at a time, sliced by hand, a DataLoader, or preprocessed on the device."""

    name: str
    kind: SourceKind
    #: DataLoader worker processes; "all": as many as this process may use (``os.sched_getaffinity``)
    workers: int | Literal["all"] = 0
    devices: tuple[Device, ...] = DEVICES

    def worker_count(self) -> int:
        if self.workers == "all":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return self.workers


VARIANTS: dict[str, BatchingVariant] = {
    v.name: v
    for v in (
        BatchingVariant("single", "single"),
        BatchingVariant("manual", "manual"),
        BatchingVariant("loader_w0", "loader", 0),
        BatchingVariant("loader_w2", "loader", 2),
        BatchingVariant("loader_wall", "loader", "all"),
        # batched nvJPEG decode and resize/normalize on the GPU feeding the model
        BatchingVariant("gpu_pre", "tensor_pre", devices=("cuda",)),
    )
}


def batching_cases(tier: Tier) -> list[Case]:
    cases = []
    for device in DEVICES:
        cases.append(Case(TECHNIQUE, MODEL[tier], "single", device, batch=1, requires=("torch",)))
        for variant in list(VARIANTS.values())[1:]:
            if device not in variant.devices:
                continue
            # the quick tier keeps the DataLoader and device variants at the largest batch only
            batches = BATCHES[tier][-1:] if tier == "quick" and variant.name != "manual" else BATCHES[tier]
            cases += [Case(TECHNIQUE, MODEL[tier], variant.name, device, batch=b, requires=("torch",)) for b in batches]
    return cases


def baseline_of(case: Case) -> Case:
    """Every variant is judged against one image per forward on the same model and device."""
    return replace(case, variant="single", batch=1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, batching_cases)


def test_batching(case: Case, clip_zero_shot, jpeg_corpus, settings, measure_case) -> None:
    from inferperf.data.loaders import batch_source, preprocessing_agreement

    classifier = clip_zero_shot.model
    paths = jpeg_corpus.paths(IMAGES[settings.tier, case.device])
    variant = VARIANTS[case.variant]
    workers = variant.worker_count()
    source = batch_source(
        variant.kind, paths, case.batch, classifier.transform, workers=workers, pin_memory=case.device == "cuda", device=case.device
    )
    clock = StageClock(case.device)
    processed: list[int] = []
    extra: dict[str, object] = {}
    if variant.kind == "tensor_pre":
        extra["agreement"] = preprocessing_agreement(paths[:AGREEMENT_IMAGES], classifier.transform, case.device, classifier.classify)

    def one_pass() -> None:
        processed.append(drain(source, classifier.classify, clock))

    try:
        info = measure_case(
            case,
            Workload(one_pass, items_per_round=len(paths)),
            BUDGETS,
            facts=clip_zero_shot.facts,
            stages=clock,
            extra={
                "images": len(paths),
                "loader_workers": workers,
                "baseline_case_id": baseline_of(case).case_id,
                **extra,
                **clip_zero_shot.record(),
            },
        )
    finally:
        source.close()
    # every round classified every image exactly once: no image dropped or counted twice
    assert processed and all(n == len(paths) for n in processed), processed
    assert info["dominant_stage"] in ("data", "model")
