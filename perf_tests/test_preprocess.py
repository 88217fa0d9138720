"""Technique 2 (docs/experiments.md#2): image preprocessing on the CPU vs on the GPU with NVIDIA DALI.

The same logical work (two recipes, see ``inferperf.data.preprocess``) on Pillow + torchvision
in a DataLoader, batched ``torchvision.io.decode_jpeg`` (CPU, or nvJPEG on CUDA) and DALI (CPU,
or the GPU with the mixed decoder), DALI fed by its file reader and by an external source.
Measured alone (images/s) and followed by a training step of the seed's small CNN.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from inferperf.cases import Case, Device, Tier
from inferperf.data.pipelines import PIPELINES, REFERENCE, build_pipeline
from inferperf.data.recipes import RECIPES
from inferperf.measure import ModelFacts, StageClock, Workload, drain
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

TECHNIQUE = "preprocess"
TRAIN_MODEL = "tinycnn"
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=5, warmup_rounds=1), "standard": Budget(10, 2)}
TRAIN_BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=3, warmup_rounds=1), "standard": Budget(5, 1)}
IMAGES: dict[tuple[Tier, Device], int] = {
    ("quick", "cpu"): 64,
    ("quick", "cuda"): 256,
    ("standard", "cpu"): 512,
    ("standard", "cuda"): 2048,
}
BATCHES: dict[Tier, tuple[int, ...]] = {"quick": (16,), "standard": (32, 128)}
TRAIN_BATCH: dict[Tier, int] = {"quick": 16, "standard": 32}


def preprocess_cases(tier: Tier) -> list[Case]:
    return [
        Case(TECHNIQUE, recipe.name, spec.variant, spec.device, recipe.dtype_name, batch, requires=spec.requires)
        for recipe in RECIPES.values()
        for spec in PIPELINES.values()
        for batch in BATCHES[tier]
    ]


def training_cases(tier: Tier) -> list[Case]:
    cases = []
    for train_device in ("cpu", "cuda"):
        for spec in PIPELINES.values():
            if spec.device == "cuda" and train_device == "cpu":
                continue  # preprocessing on the GPU only to train on the CPU is not a real setup
            cases.append(Case(TECHNIQUE, TRAIN_MODEL, spec.variant, train_device, "fp32", TRAIN_BATCH[tier], requires=spec.requires))
    return cases


def baseline_of(case: Case) -> Case:
    """Every pipeline is judged against Pillow + torchvision in a DataLoader without workers."""
    device = "cpu" if case.model != TRAIN_MODEL else case.device
    return replace(case, variant=REFERENCE, device=device, requires=("torch",))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    makers = {"test_preprocess": preprocess_cases, "test_preprocess_train": training_cases}
    parametrize_cases(metafunc, makers[metafunc.function.__name__])


def _threads(settings) -> int:
    return settings.threads or len(os.sched_getaffinity(0))


def _pipeline_extra(case: Case, spec, count: int, threads: int, recipe_name: str) -> dict[str, object]:
    return {
        **spec.record(),
        "recipe": recipe_name,
        "images": count,
        "dali_threads": threads if spec.engine == "dali" else None,
        "baseline_case_id": baseline_of(case).case_id,
    }


def test_preprocess(case: Case, jpeg_corpus, settings, measure_case, benchmark) -> None:
    spec, recipe = PIPELINES[case.variant], RECIPES[case.model]  # type: ignore[index]
    paths = jpeg_corpus.paths(IMAGES[settings.tier, case.device])
    threads = _threads(settings)
    pipeline = build_pipeline(spec, paths, recipe, case.batch, threads)
    processed: list[int] = []

    def one_epoch() -> None:
        count = 0
        for images, labels in pipeline.epoch():
            assert images.shape[1:] == (3, recipe.out_size, recipe.out_size) and images.dtype == recipe.dtype
            count += len(labels)
        processed.append(count)

    try:
        measure_case(
            case,
            Workload(one_epoch, items_per_round=len(paths), inference=False),
            BUDGETS,
            extra=_pipeline_extra(case, spec, len(paths), threads, recipe.name),
        )
    finally:
        pipeline.close()
    benchmark.extra_info["warnings"] = list(getattr(pipeline, "warnings", []))
    # each round processed every image exactly once: no padding or dropped tail counted as work
    assert processed and all(n == len(paths) for n in processed), processed


def test_preprocess_train(case: Case, jpeg_corpus, settings, measure_case, benchmark) -> None:
    from inferperf.models.cnn import Trainer

    spec, recipe = PIPELINES[case.variant], RECIPES["resize240"]
    paths = jpeg_corpus.paths(IMAGES[settings.tier, case.device])
    threads = _threads(settings)
    pipeline = build_pipeline(spec, paths, recipe, case.batch, threads)
    trainer = Trainer(case.device)
    clock = StageClock(case.device)
    processed: list[int] = []

    def train_step(batch) -> None:
        images, labels = batch
        trainer.step(images.to(case.device, non_blocking=True), labels.to(case.device, non_blocking=True))

    def one_epoch() -> None:
        processed.append(drain(pipeline.epoch, train_step, clock, compute_stage="train", count=lambda b: len(b[1])))

    try:
        measure_case(
            case,
            Workload(one_epoch, items_per_round=len(paths), inference=False),
            TRAIN_BUDGETS,
            facts=ModelFacts(params=trainer.params),
            stages=clock,
            extra={**_pipeline_extra(case, spec, len(paths), threads, recipe.name), "train_device": case.device},
        )
    finally:
        pipeline.close()
    benchmark.extra_info["warnings"] = list(getattr(pipeline, "warnings", []))
    assert processed and all(n == len(paths) for n in processed), processed
