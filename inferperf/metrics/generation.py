"""Text-generation metrics from per-request token timestamps: plain functions, no torch.

One request's record is when it started (``start_s``) and when each of its generated tokens
arrived (``token_times_s``, one entry per token: tokens that arrive together, as a speculative
step's accepted tokens or a streamed chunk's, share a time). Every metric is defined once here, so
the local benchmarks, the served ones and ``inferperf report`` compute the same thing:

- TTFT = first token − start (the prefill, plus queueing where there is any);
- TPOT = (last token − first token) / (N − 1): the mean decode time per token after the first;
- E2E = last token − start, so TTFT + (N − 1) · TPOT = E2E exactly;
- per-token latency: the gap before each token after the first, a gap shared by k tokens that
  arrived together divided among them (k tokens after a gap g each count g / k), so a chunk of
  tokens neither hides behind one long gap nor shows as k zero gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from inferperf.metrics.distribution import percentile

#: percentiles of per-token latency the record carries
TOKEN_PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RequestTiming:
    """When one request started and when each generated token arrived (seconds, one clock)."""

    start_s: float
    token_times_s: tuple[float, ...]
    prompt_tokens: int

    def __post_init__(self) -> None:
        if any(b < a for a, b in zip(self.token_times_s, self.token_times_s[1:])):
            raise ValueError("token times must not go backwards")

    @property
    def tokens(self) -> int:
        return len(self.token_times_s)

    @property
    def ttft_s(self) -> float | None:
        return self.token_times_s[0] - self.start_s if self.token_times_s else None

    @property
    def e2e_s(self) -> float | None:
        return self.token_times_s[-1] - self.start_s if self.token_times_s else None

    @property
    def tpot_s(self) -> float | None:
        """(last − first) / (N − 1); None for fewer than two tokens (no decode step to time)."""
        if self.tokens < 2:
            return None
        return (self.token_times_s[-1] - self.token_times_s[0]) / (self.tokens - 1)

    def token_gaps_s(self) -> list[float]:
        """Per-token latency of every token after the first (a shared gap divided among its tokens)."""
        gaps: list[float] = []
        times = self.token_times_s
        index = 1
        while index < len(times):
            arrived = times[index]
            end = index
            while end + 1 < len(times) and times[end + 1] == arrived:
                end += 1
            share = (arrived - times[index - 1]) / (end - index + 1)
            gaps.extend([share] * (end - index + 1))
            index = end + 1
        return gaps


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None


@dataclass(frozen=True)
class RoundTiming:
    """One timed round: its requests, and the wall time of the whole round."""

    requests: tuple[RequestTiming, ...]
    wall_s: float

    @property
    def output_tokens(self) -> int:
        return sum(r.tokens for r in self.requests)

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.requests)

    def ttft_s(self) -> float | None:
        return _median(r.ttft_s for r in self.requests)

    def tpot_s(self) -> float | None:
        return _median(r.tpot_s for r in self.requests)

    def output_tokens_per_s(self) -> float | None:
        return self.output_tokens / self.wall_s if self.wall_s > 0 else None


def generation_metrics(rounds: Sequence[RoundTiming]) -> dict[str, object]:
    """The ``extra_info`` keys of a generation case from its timed rounds (schema: technique 6).

    Medians over every request of every round (TTFT, TPOT, E2E, per-sequence tokens/s); per-token
    percentiles over every token's latency; aggregate tokens/s from the median round; the prefill
    rate from the prompt tokens of a round over the median first-token time of its requests. The
    per-round values are kept (``round_metrics``) so a comparison can judge any of them.
    """
    requests = [r for rnd in rounds for r in rnd.requests]
    gaps = [g for r in requests for g in r.token_gaps_s()]
    ttft = _median(r.ttft_s for r in requests)
    median_wall = _median(rnd.wall_s for rnd in rounds)
    output_per_round = _median(rnd.output_tokens for rnd in rounds)
    prompt_per_round = _median(rnd.prompt_tokens for rnd in rounds)
    per_sequence = [r.tokens / r.e2e_s for r in requests if r.e2e_s]
    metrics: dict[str, object] = {
        "requests": len(rounds[0].requests) if rounds else None,
        "prompt_tokens": int(prompt_per_round) if prompt_per_round is not None else None,
        "output_tokens": int(output_per_round) if output_per_round is not None else None,
        "ttft_s": ttft,
        "ttft_p99_s": percentile([r.ttft_s for r in requests if r.ttft_s is not None], 99),
        "tpot_s": _median(r.tpot_s for r in requests),
        "e2e_s": _median(r.e2e_s for r in requests),
        **{f"token_latency_p{q}_s": percentile(gaps, q) for q in TOKEN_PERCENTILES},
        "output_tokens_per_s": output_per_round / median_wall if output_per_round and median_wall else None,
        "sequence_output_tokens_per_s": _median(per_sequence),
        "prefill_tokens_per_s": prompt_per_round / ttft if prompt_per_round and ttft else None,
        "round_metrics": {
            "ttft_s": [rnd.ttft_s() for rnd in rounds],
            "tpot_s": [rnd.tpot_s() for rnd in rounds],
            "output_tokens_per_s": [rnd.output_tokens_per_s() for rnd in rounds],
        },
    }
    return metrics


def decode_bandwidth_fraction(step_bytes: float | None, tpot_s: float | None, bandwidth: float | None) -> float | None:
    """Bytes one decode step reads / TPOT, over the calibrated memory bandwidth (decode is bandwidth-bound)."""
    if not step_bytes or not tpot_s or not bandwidth or tpot_s <= 0:
        return None
    return step_bytes / tpot_s / bandwidth


def kv_cache_bytes(*, layers: int, kv_heads: int, head_dim: int, tokens: int, sequences: int, element_bytes: int) -> int:
    """Keys and values of every layer for ``tokens`` positions of ``sequences`` sequences."""
    return 2 * layers * kv_heads * head_dim * tokens * sequences * element_bytes


def same_prefix_fraction(reference: Sequence[int], candidate: Sequence[int]) -> float:
    """Fraction of the reference's tokens the candidate matches before the first divergence."""
    if not reference:
        return 1.0
    same = 0
    for a, b in zip(reference, candidate):
        if a != b:
            break
        same += 1
    return same / len(reference)


def padding_waste_fraction(prompt_lens: Sequence[int], output_lens: Sequence[int]) -> float:
    """Of the token slots one left-padded ``generate`` over these requests computes, the share that is
    padding or tokens past a request's own length (every row runs to the longest prompt and output)."""
    rows = len(prompt_lens)
    if rows == 0:
        return 0.0
    slots = rows * (max(prompt_lens) + max(output_lens))
    useful = sum(prompt_lens) + sum(output_lens)
    return 1.0 - useful / slots
