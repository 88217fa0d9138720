"""Technique 5 (docs/experiments.md#5): int8 quantization and batching inside a detect-then-filter pipeline.

A detector finds boxes on a 384x640 image; every box is cropped and scored by AIMv2 against
four text queries (softmax, threshold). The detector is timed as its own stage; the crops come
from fixed boxes so every variant scores the same pixels. Scoring variants: fp32,
``quantize_dynamic`` of Linear layers (qint8, as published), torchao int8 dynamic (eager and
compiled) and bf16, each with one forward per crop (as published) or all crops in one batch.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace

import pytest

from inferperf.cases import DEVICES, Case, Tier
from inferperf.measure import ModelFacts, Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget
from inferperf.variants.rungs import SCORING_VARIANTS

TECHNIQUE = "pipeline"
MODEL: dict[Tier, str] = {"quick": "aimv2_t14", "standard": "aimv2_l14"}
CROPS: dict[Tier, int] = {"quick": 4, "standard": 5}
DETECTOR = "fasterrcnn_mbv3"
IMAGE_SIZE = (640, 384)  # (w, h): the seed's 384x640 image
#: the seed's threshold before (0.8) and after (0.3) quantization
THRESHOLDS = (0.3, 0.8)
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=5, warmup_rounds=1, max_time_s=6.0), "standard": Budget(5, 1)}


def detect_cases(tier: Tier) -> list[Case]:
    return [Case(TECHNIQUE, DETECTOR, "detect", device, "fp32", 1, requires=("torch",)) for device in DEVICES]


def pipeline_cases(tier: Tier) -> list[Case]:
    return [
        Case(TECHNIQUE, MODEL[tier], variant.name, device, variant.precision.dtype, CROPS[tier] if variant.batched else 1,
             requires=variant.precision.requires)
        for device in DEVICES
        for variant in SCORING_VARIANTS.values()
        if device in variant.precision.devices
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    makers = {"test_detect": detect_cases, "test_pipeline": pipeline_cases}
    parametrize_cases(metafunc, makers[metafunc.function.__name__])


@pytest.fixture(scope="module")
def scene(jpeg_corpus):
    """The 384x640 image and the crops the scorer sees (decoded once, outside timing)."""
    from PIL import Image

    from inferperf.models.detector import fixed_boxes

    with Image.open(jpeg_corpus.sized(0, IMAGE_SIZE)) as image:
        image = image.convert("RGB")
    return image, fixed_boxes(max(CROPS.values()), *IMAGE_SIZE)


def test_detect(case: Case, scene, measure_case) -> None:
    import torch
    from torchvision.transforms.v2 import functional as F

    from inferperf.measure import count_flops
    from inferperf.models.detector import build_detector

    started = time.perf_counter()
    detector = build_detector(case.model, case.device)
    setup_s = time.perf_counter() - started
    image = F.to_dtype(F.pil_to_tensor(scene[0]), torch.float32, scale=True).to(case.device)
    facts = ModelFacts(
        params=sum(p.numel() for p in detector.parameters()), flops_per_item=count_flops(lambda: detector([image])), setup_s=setup_s
    )
    measure_case(case, Workload(lambda: detector([image]), items_per_round=1), BUDGETS, facts=facts, extra={"image_size": list(IMAGE_SIZE)})


def test_pipeline(case: Case, scene, scorer_variant, settings, measure_case) -> None:
    import torch

    from inferperf.models.aimv2 import decision_agreement, score_crops
    from inferperf.variants.compiled import counting_compiles

    image, boxes = scene
    boxes = boxes[: CROPS[settings.tier]]
    batched = SCORING_VARIANTS[case.variant].batched
    crops = [image.crop(box) for box in boxes]
    scorer, embed, input_dtype = scorer_variant.scorer, scorer_variant.embed, scorer_variant.input_dtype
    compiled = SCORING_VARIANTS[case.variant].precision.compiled
    compile_notes: dict[str, object] = {}
    with torch.inference_mode(), counting_compiles(compile_notes) if compiled else nullcontext():
        started = time.perf_counter()
        candidate = score_crops(scorer, embed, input_dtype, crops, batched, case.device)
        first_call_s = time.perf_counter() - started
    agreement = decision_agreement(scorer_variant.reference(crops), candidate, THRESHOLDS)
    facts = scorer_variant.facts
    if compiled:
        # compilation happens at the first call: it is set-up, never timing
        facts = replace(facts, setup_s=(facts.setup_s or 0) + first_call_s)
    baseline = replace(case, variant="fp32_percrop", dtype="fp32", batch=1, requires=("torch",))

    def score_image() -> None:
        scores, _ = score_crops(scorer, embed, input_dtype, [image.crop(box) for box in boxes], batched, case.device)
        scores.max()  # the filter's decision needs the scores materialized

    measure_case(
        case,
        Workload(score_image, items_per_round=len(boxes)),
        BUDGETS,
        facts=facts,
        extra={
            "crops": len(boxes),
            "agreement": agreement,
            "first_call_s": first_call_s,
            "baseline_case_id": baseline.case_id,
            **compile_notes,
            **scorer_variant.weights,
        },
    )
    assert agreement["cosine"] > 0.9, agreement
