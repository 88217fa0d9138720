"""Technique 4 (docs/experiments.md#4): the optimization ladder of a vision transformer (DeiT).

The seed's rungs (eager, TorchScript, dynamic int8 + script, optimize_for_mobile, lite
interpreter) and the methods that replaced them (torch.compile, bf16/fp16, torch.export +
AOTInductor, torchao int8 with and without compile, ONNX Runtime fp32 and dynamic int8,
ExecuTorch XNNPACK). Per rung: latency and images/s on preprocessed corpus images, the saved
artefact's size, set-up time, and agreement with eager (cosine of logits, top-1 match).
Rungs this torch cannot run skip with the exact reason.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget
from inferperf.variants.rungs import BASELINE, RUNGS

TECHNIQUE = "ladder"
MODEL: dict[Tier, str] = {"quick": "deit_tiny", "standard": "deit_base"}
BATCHES: dict[Tier, tuple[int, ...]] = {"quick": (1, 8), "standard": (1, 16)}
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=10, warmup_rounds=2, max_time_s=8.0), "standard": Budget(20, 3)}


def ladder_cases(tier: Tier) -> list[Case]:
    return [
        Case(TECHNIQUE, MODEL[tier], rung.name, device, rung.dtype, batch, requires=rung.requires)
        for device in ("cpu", "cuda")
        for rung in RUNGS.values()
        if device in rung.devices
        for batch in BATCHES[tier]
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, ladder_cases)


def test_ladder(case: Case, ladder_rung, measure_case) -> None:
    prepared, inputs = ladder_rung.prepared, ladder_rung.inputs
    baseline = replace(case, variant=BASELINE, dtype="fp32", requires=("torch",))
    measure_case(
        case,
        Workload(lambda: prepared.call(inputs), items_per_round=case.batch),
        BUDGETS,
        facts=ladder_rung.facts,
        extra={
            "agreement": ladder_rung.agreement,
            "baseline_case_id": baseline.case_id,
            "warnings": prepared.warnings,
            **prepared.notes,
            **ladder_rung.weights,
        },
    )
    # a rung that changes the predictions beyond recognition is a broken rung, not a fast one
    assert ladder_rung.agreement["cosine"] > 0.9, ladder_rung.agreement
