"""Served metrics from per-request records: plain functions, no torch, no HTTP.

One request's record (``ServedRequest``) holds when the load generator's schedule said to send
it, when the generator got to it, when it was sent (after any wait for an in-flight slot), the
first byte, every streamed chunk's arrival with the tokens it carried, the end, the server's
``usage`` and the client tokenizer's count, ``finish_reason``, status and error. Every metric is
defined here once, in two levels: ``request_metrics`` (what any request has: counts, errors, E2E,
requests/s, the client's self-check — the Triton cases take these) and ``token_metrics`` (what a
token stream adds: TTFT, TPOT, ITL, tokens/s, goodput); ``served_metrics`` is both.

- TTFT = first token − reference; E2E = last token (done) − reference; the reference is the send
  (what most tools report) **and** the scheduled time (what a user waiting in the queue sees: a
  client that sends late, or waits for a slot, does not hide the wait — coordinated omission);
- TPOT = (E2E − TTFT) / (N − 1) with N the tokens generated (the server's ``usage`` where given);
  it and ITL are differences of token times, the same from either reference;
- ITL per token: a chunk's gap divided among the tokens it carried (``RequestTiming.token_gaps_s``);
  ITL per chunk: the raw gaps between chunks (what a tool that counts chunks as tokens reports);
- throughput over the window from the first scheduled send to the last completion; goodput =
  requests meeting every SLO per second of that window. A failed request is in every denominator:
  it counts as sent, never as good, and in the error rate; latency percentiles are over the
  requests that completed (the error rate says how many did not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from inferperf.metrics.distribution import (
    distribution,
    percentile,
    percentile_key,
    value,
)
from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest
from inferperf.metrics.self_check import self_check, worst_check


@dataclass(frozen=True)
class Slo:
    """``--slo ttft=…,tpot=…,e2e=…``: the latency bounds (seconds) a good request meets; None: no bound."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def as_record(self) -> dict[str, float]:
        return {k: v for k, v in (("ttft_s", self.ttft_s), ("tpot_s", self.tpot_s), ("e2e_s", self.e2e_s)) if v is not None}


def parse_slo(value: str) -> Slo:
    """``ttft=0.5,tpot=0.05,e2e=5`` (seconds; ``ms`` suffix allowed) -> Slo; ValueError names the part."""
    bounds: dict[str, float] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        name, sep, number = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("ttft", "tpot", "e2e"):
            raise ValueError(f"--slo: expected ttft=S, tpot=S and/or e2e=S (seconds), got {part!r}")
        text = number.strip().lower()
        scale = 1e-3 if text.endswith("ms") else 1.0
        try:
            seconds = float(text.removesuffix("ms").removesuffix("s")) * scale
        except ValueError:
            raise ValueError(f"--slo: {name} needs a number of seconds, got {number.strip()!r}") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"--slo: {name} must be a positive number of seconds, got {number.strip()!r}")
        bounds[f"{name}_s"] = seconds
    if not bounds:
        raise ValueError("--slo: no bound given (e.g. ttft=0.5,tpot=0.05)")
    return Slo(**bounds)


def meets_slo(request: ServedRequest, slo: Slo) -> bool:
    """Completed, and within every bound, TTFT and E2E from the scheduled time (what a user sees)."""
    timing = request.timing("schedule")
    if timing is None:
        return False
    checks = ((slo.ttft_s, timing.ttft_s), (slo.tpot_s, timing.tpot_s), (slo.e2e_s, request.e2e_s("schedule")))
    return all(bound is None or (value is not None and value <= bound) for bound, value in checks)


def _span_s(requests: Sequence[ServedRequest]) -> float | None:
    """First scheduled send → last completion (or last failure seen)."""
    ends = [r.done_s for r in requests if r.done_s is not None]
    if not requests or not ends:
        return None
    span = max(ends) - min(r.scheduled_s for r in requests)
    return span if span > 0 else None


def _done(requests: Sequence[ServedRequest]) -> list[ServedRequest]:
    return [r for r in requests if r.ok]


def _error_rate(requests: Sequence[ServedRequest]) -> float | None:
    return (len(requests) - len(_done(requests))) / len(requests) if requests else None


def request_round_summary(rnd: RoundLoad) -> dict[str, float | None]:
    """One round's request-level values a comparison judges (``round_metrics``)."""
    return {"e2e_p99_s": percentile([r.e2e_s("schedule") for r in _done(rnd.requests)], 99),  # type: ignore[misc]
            "error_rate": _error_rate(rnd.requests)}


def token_round_summary(rnd: RoundLoad, slo: Slo) -> dict[str, float | None]:
    """One round's token-level values a comparison judges (``round_metrics``)."""
    done = _done(rnd.requests)
    ttft = [t.ttft_s for t in (r.timing("schedule") for r in done) if t is not None and t.ttft_s is not None]
    tpot = [t.tpot_s for t in (r.timing() for r in done) if t is not None and t.tpot_s is not None]
    span = _span_s(rnd.requests)
    return {
        "ttft_p50_s": percentile(ttft, 50), "ttft_p99_s": percentile(ttft, 99),
        "tpot_p50_s": percentile(tpot, 50), "tpot_p99_s": percentile(tpot, 99),
        "output_tokens_per_s": sum(r.completion_tokens for r in done) / span if span else None,
        "goodput_rps": sum(meets_slo(r, slo) for r in rnd.requests) / span if span else None,
    }


def _window_s(rounds: Sequence[RoundLoad]) -> float:
    """The rounds' spans added up: the seconds over which their throughputs are rates."""
    return sum(s for s in (_span_s(rnd.requests) for rnd in rounds) if s)


def request_metrics(rounds: Sequence[RoundLoad], point: LoadPoint, reported: Sequence[float] | None = None) -> dict[str, object]:
    """The request-level ``extra_info`` keys of a served case — what any request has, a streamed
    generation's or a Triton classification's: counts, errors, E2E from the send and from the
    schedule, the client's queueing, requests/s and the client's self-check.

    ``reported``: the latencies the case reports first, against which the self-check judges the
    client's lag (default: E2E from the send; a streamed case passes its TTFTs).
    """
    requests = [r for rnd in rounds for r in rnd.requests]
    done = _done(requests)
    e2e_send = [r.e2e_s("send") for r in done]
    distributions = {
        "e2e_from_send_s": distribution(e2e_send),  # type: ignore[arg-type]
        "e2e_from_schedule_s": distribution([r.e2e_s("schedule") for r in done]),  # type: ignore[misc]
        "client_queue_wait_s": distribution([r.send_s - r.dispatched_s for r in done if r.send_s is not None and r.dispatched_s is not None]),
    }
    window = _window_s(rounds)
    judged = distribution(reported if reported is not None else e2e_send)  # type: ignore[arg-type]
    checks = [self_check(rnd, point, value(judged, "p50"), value(judged, "p99")) for rnd in rounds]
    worst = worst_check(checks)
    return {
        "load": point.as_record(),
        "requests_sent": len(requests),
        "requests_completed": len(done),
        "requests_failed": len(requests) - len(done),
        "error_rate": _error_rate(requests),
        "errors": sorted({r.error for r in requests if r.error})[:5],
        "latency_distributions": distributions,
        "e2e_s": value(distributions["e2e_from_send_s"], "p50"),
        "e2e_p99_from_schedule_s": value(distributions["e2e_from_schedule_s"], "p99"),
        "requests_per_s": len(done) / window if window else None,
        "self_check": worst,
        "valid": bool(worst.get("valid")),
        "invalid_reason": worst.get("invalid_reason"),
        "round_metrics": _per_round([request_round_summary(rnd) for rnd in rounds]),
    }


def _token_distributions(done: Sequence[ServedRequest]) -> dict[str, dict[str, object] | None]:
    from_send = [t for t in (r.timing("send") for r in done) if t is not None]
    from_schedule = [t for t in (r.timing("schedule") for r in done) if t is not None]
    return {
        "ttft_from_send_s": distribution([t.ttft_s for t in from_send if t.ttft_s is not None]),
        "ttft_from_schedule_s": distribution([t.ttft_s for t in from_schedule if t.ttft_s is not None]),
        "tpot_s": distribution([t.tpot_s for t in from_send if t.tpot_s is not None]),
        "itl_per_token_s": distribution([g for t in from_send for g in t.token_gaps_s()]),
        "itl_per_chunk_s": distribution([g for r in done for g in r.chunk_gaps_s()]),
    }


def token_metrics(rounds: Sequence[RoundLoad], slo: Slo) -> dict[str, object]:
    """The token-level ``extra_info`` keys of a streamed generation case: TTFT, TPOT, ITL per token
    and per chunk, token throughput, goodput against the SLO, finish reasons, token-count checks."""
    requests = [r for rnd in rounds for r in rnd.requests]
    done = _done(requests)
    distributions = _token_distributions(done)
    window = _window_s(rounds)
    output_tokens = sum(r.completion_tokens for r in done)
    prompt_tokens = sum(r.prompt_tokens_server or r.prompt_tokens_client or 0 for r in done)
    good = sum(meets_slo(r, slo) for r in requests)
    return {
        "slo": slo.as_record(),
        "finish_reasons": sorted({r.finish_reason for r in done if r.finish_reason}),
        "token_count_mismatches": sum(r.token_count_mismatch for r in requests),
        "latency_distributions": distributions,
        # the headline keys shared with local generation (from the send, as local timing starts at the call)
        "ttft_s": value(distributions["ttft_from_send_s"], "p50"),
        "ttft_p99_s": value(distributions["ttft_from_send_s"], "p99"),
        "tpot_s": value(distributions["tpot_s"], "p50"),
        **{f"token_latency_{percentile_key(q)}_s": value(distributions["itl_per_token_s"], percentile_key(q)) for q in (50, 90, 99)},
        "ttft_p99_from_schedule_s": value(distributions["ttft_from_schedule_s"], "p99"),
        "tpot_p99_s": value(distributions["tpot_s"], "p99"),
        "chunk_latency_p99_s": value(distributions["itl_per_chunk_s"], "p99"),
        "output_tokens_per_s": output_tokens / window if window else None,
        "total_tokens_per_s": (output_tokens + prompt_tokens) / window if window else None,
        "goodput_rps": good / window if window else None,
        "good_fraction": good / len(requests) if requests else None,
        "round_metrics": _per_round([token_round_summary(rnd, slo) for rnd in rounds]),
    }


def _first_kind_s(request: ServedRequest, kind: str) -> float | None:
    """Send -> the first chunk of ``kind`` (a reasoning model's first answer token, say)."""
    if request.send_s is None:
        return None
    kinds = request.chunk_kinds or ["content"] * len(request.chunk_times_s)
    return next((t - request.send_s for t, k, n in zip(request.chunk_times_s, kinds, request.chunk_tokens) if k == kind and n > 0), None)


def traffic_metrics(rounds: Sequence[RoundLoad]) -> dict[str, object]:
    """What only some traffic has: TTFT by turn (multi-turn sessions: later turns carry a history the
    prefix cache may hold) and the chat endpoint's reasoning and tool-call tokens apart from content."""
    done = _done([r for rnd in rounds for r in rnd.requests])
    metrics: dict[str, object] = {}
    if any(r.turn is not None for r in done):
        first = [t.ttft_s for r in done if r.turn == 0 for t in [r.timing("send")] if t is not None and t.ttft_s is not None]
        later = [t.ttft_s for r in done if r.turn for t in [r.timing("send")] if t is not None and t.ttft_s is not None]
        metrics.update(ttft_first_turn_p50_s=percentile(first, 50), ttft_later_turns_p50_s=percentile(later, 50),
                       turns_completed=len(done))
    if any(r.chunk_kinds for r in done):
        def tokens(request: ServedRequest, kind: str) -> int:
            return sum(n for k, n in zip(request.chunk_kinds or ["content"] * len(request.chunk_tokens), request.chunk_tokens) if k == kind)

        metrics.update(
            reasoning_tokens_per_request=sum(tokens(r, "reasoning") for r in done) / len(done),
            tool_call_tokens_per_request=sum(tokens(r, "tool") for r in done) / len(done),
            content_tokens_per_request=sum(tokens(r, "content") for r in done) / len(done),
            ttft_content_p50_s=percentile([t for t in (_first_kind_s(r, "content") for r in done) if t is not None], 50),
        )
    return metrics


def served_metrics(rounds: Sequence[RoundLoad], point: LoadPoint, slo: Slo) -> dict[str, object]:
    """Every ``extra_info`` key of a streamed generation case: the request-level keys (the client's
    lag judged against TTFT, the latency a generation case reports first) and the token-level ones."""
    tokens = token_metrics(rounds, slo)
    ttft = [t.ttft_s for rnd in rounds for t in (r.timing("send") for r in _done(rnd.requests)) if t is not None and t.ttft_s is not None]
    requests = request_metrics(rounds, point, reported=ttft)
    merged = {**requests, **tokens, **traffic_metrics(rounds)}
    for nested in ("latency_distributions", "round_metrics"):
        merged[nested] = {**requests[nested], **tokens[nested]}  # type: ignore[dict-item]
    return merged


def _per_round(summaries: Sequence[Mapping[str, float | None]]) -> dict[str, list[float | None]]:
    names = summaries[0].keys() if summaries else ()
    return {name: [s[name] for s in summaries] for name in names}


def slo_met(metrics: Mapping[str, object], slo: Slo, max_error_rate: float) -> bool:
    """MLPerf's Server question for one load point: p99 TTFT (from the schedule) and p99 TPOT within
    the SLO, the error rate within bounds, and the client kept its schedule."""
    ttft, tpot = metrics.get("ttft_p99_from_schedule_s"), metrics.get("tpot_p99_s")
    error_rate = metrics.get("error_rate")
    return (
        bool(metrics.get("valid"))
        and isinstance(error_rate, float) and error_rate <= max_error_rate
        and (slo.ttft_s is None or (isinstance(ttft, float) and ttft <= slo.ttft_s))
        and (slo.tpot_s is None or (isinstance(tpot, float) and tpot <= slo.tpot_s))
    )


def capacity_interval(probes: Sequence[Mapping[str, object]]) -> tuple[float | None, float | None]:
    """[low, high]: ``low`` the highest rate every probe of which met the SLO (and every lower rate's
    too), ``high`` the lowest rate above it at which at least half the probes did not (None: none)."""
    by_rate: dict[float, list[bool]] = {}
    for probe in probes:
        if probe.get("valid") is False:  # the client could not keep its schedule: says nothing of the SLO
            continue
        by_rate.setdefault(float(probe["rate_rps"]), []).append(bool(probe["meets_slo"]))  # type: ignore[arg-type]
    low = None
    for rate in sorted(by_rate):
        if not all(by_rate[rate]):
            break
        low = rate
    above = [r for r in sorted(by_rate) if (low is None or r > low) and sum(by_rate[r]) * 2 <= len(by_rate[r])]
    return low, (above[0] if above else None)
