"""Technique 6: text generation with a decoder LM — prefill and decode, KV caches, compile,
half precision, torchao int8/int4, padded vs continuous batching, speculative decoding.

A round is one batch of requests generated to their forced lengths (greedy); items are output
tokens, so ``items_per_s`` is output tokens/s and cost and energy are per token. Each variant's
greedy tokens and first-position logits are checked against eager decoding of every request alone;
a variant whose logits cosine drops below 0.9 fails, as a ladder rung does.
"""

from __future__ import annotations

import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget
from inferperf.variants.generation_variants import GENERATION_VARIANTS

TECHNIQUE = "generation"
MODEL: dict[Tier, str] = {"quick": "llama_tiny", "standard": "qwen2_0p5b"}
#: (prompt tokens, new tokens) per request
LENGTHS: dict[Tier, tuple[tuple[int, int], ...]] = {"quick": ((128, 32),), "standard": ((128, 128), (512, 128), (2048, 128))}
#: requests in a batch: every variant at 1; the batching variants (padded vs continuous) at MIXED_BATCH
MIXED_BATCH: dict[Tier, int] = {"quick": 4, "standard": 8}
BUDGETS: dict[Tier, Budget] = {
    "quick": Budget(rounds=10, warmup_rounds=1, max_time_s=3.0),
    "standard": Budget(rounds=10, warmup_rounds=1, max_time_s=60.0),
}


def generation_cases(tier: Tier) -> list[Case]:
    cases = []
    for device in ("cpu", "cuda"):
        for prompt_len, output_len in LENGTHS[tier]:
            for variant in GENERATION_VARIANTS.values():
                if device not in variant.devices:
                    continue
                batch = 1 if variant.batching == "fixed" else MIXED_BATCH[tier]
                cases.append(
                    Case(TECHNIQUE, MODEL[tier], variant.name, device, variant.dtype, batch, requires=variant.requires,
                         prompt_len=prompt_len, output_len=output_len)
                )
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, generation_cases)


def test_generation(case: Case, generation_run, measure_case) -> None:
    run = generation_run
    measure_case(
        case,
        Workload(run.step, items_per_round=run.workload.output_tokens),
        BUDGETS,
        facts=run.facts,
        extra={"agreement": run.agreement, **run.extra},
        derive=run.derived,
    )
    assert all(len(r.tokens) == len(run.workload.prompts) for r in run.rounds)
    # a variant that changes the logits beyond recognition is broken, not fast
    cosine = run.agreement["cosine"]
    assert cosine is None or cosine > 0.9, run.agreement
