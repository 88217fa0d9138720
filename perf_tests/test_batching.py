"""Technique 1 (SEEDS.md §1): batching an image-text model, end to end.

Zero-shot CLIP over N real JPEGs: decode, preprocess, image tower, ``softmax(img @ text.T)``.
Variants: one image per forward (the baseline), manual slicing into batches, and a DataLoader
over a Dataset that decodes and preprocesses, without and with worker processes.
"""

from __future__ import annotations

import pytest

from inferperf.cases import DEVICES, Case, Device, Tier
from inferperf.data.loaders import batch_source
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
LOADER_WORKERS = 2
#: variant -> (source kind, DataLoader workers)
VARIANTS = {
    "single": ("single", 0),
    "manual": ("manual", 0),
    "loader_w0": ("loader", 0),
    f"loader_w{LOADER_WORKERS}": ("loader", LOADER_WORKERS),
}


def batching_cases(tier: Tier) -> list[Case]:
    cases = []
    for device in DEVICES:
        cases.append(Case(TECHNIQUE, MODEL[tier], "single", device, batch=1, requires=("torch",)))
        for variant in list(VARIANTS)[1:]:
            # the quick tier keeps the DataLoader variants at the largest batch only
            batches = BATCHES[tier][-1:] if tier == "quick" and variant != "manual" else BATCHES[tier]
            cases += [Case(TECHNIQUE, MODEL[tier], variant, device, batch=b, requires=("torch",)) for b in batches]
    return cases


def baseline_of(case: Case) -> Case:
    """Every variant is judged against one image per forward on the same model and device."""
    return Case(TECHNIQUE, case.model, "single", case.device, batch=1, requires=case.requires)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, batching_cases)


def test_batching(case: Case, clip_zero_shot, jpeg_corpus, settings, measure_case) -> None:
    classifier = clip_zero_shot.model
    paths = jpeg_corpus.paths(IMAGES[settings.tier, case.device])
    kind, workers = VARIANTS[case.variant]
    source = batch_source(
        kind, paths, case.batch, classifier.transform, workers=workers, pin_memory=case.device == "cuda"
    )
    clock = StageClock(case.device)
    processed: list[int] = []

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
                **clip_zero_shot.record(),
            },
        )
    finally:
        source.close()
    # every round classified every image exactly once: no image dropped or counted twice
    assert processed and all(n == len(paths) for n in processed), processed
    assert info["dominant_stage"] in ("data", "model")
