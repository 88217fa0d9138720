"""Served-generation metrics from per-request records: plain functions, no torch, no HTTP.

One request's record (``ServedRequest``) holds when the load generator's schedule said to send
it, when the generator got to it, when it was sent (after any wait for an in-flight slot), the
first byte, every streamed chunk's arrival with the tokens it carried, the end, the server's
``usage`` and the client tokenizer's count, ``finish_reason``, status and error. Every metric is
defined here once, for the OpenAI-compatible and the Triton clients alike:

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
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from inferperf.analysis.generation import RequestTiming

#: the percentiles of each latency the record carries (99.9 written p999)
PERCENTILES: tuple[float, ...] = (50, 90, 99, 99.9)
#: confidence of the distribution-free interval around each percentile
PERCENTILE_CONFIDENCE = 0.95


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


@dataclass
class ServedRequest:
    """What one request did, in seconds on the load generator's clock (``time.perf_counter``)."""

    index: int
    #: when the arrival schedule said to send it (closed loop: when its stream became free)
    scheduled_s: float
    prompt_tokens_client: int | None = None
    #: when the generator's loop got to it (its lag behind the schedule is the client's fault)
    dispatched_s: float | None = None
    #: when it went out, after any wait for an in-flight slot (that wait is client queueing delay)
    send_s: float | None = None
    first_byte_s: float | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    done_s: float | None = None
    prompt_tokens_server: int | None = None
    completion_tokens_server: int | None = None
    #: tokens the client's tokenizer counted in the streamed text (None: no tokenizer, one per chunk)
    completion_tokens_client: int | None = None
    finish_reason: str | None = None
    status: int | None = None
    error: str | None = None
    warmup: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_s is not None and self.send_s is not None

    @property
    def completion_tokens(self) -> int:
        """Tokens generated: the server's ``usage`` when it gave one, else the chunks' counts."""
        if self.completion_tokens_server is not None:
            return self.completion_tokens_server
        return sum(self.chunk_tokens)

    @property
    def token_count_mismatch(self) -> bool:
        """The client tokenizer's count differs from the server's ``usage`` (either side present)."""
        client, server = self.completion_tokens_client, self.completion_tokens_server
        prompt_client, prompt_server = self.prompt_tokens_client, self.prompt_tokens_server
        return (client is not None and server is not None and client != server) or (
            prompt_client is not None and prompt_server is not None and prompt_client != prompt_server
        )

    def token_times_s(self) -> tuple[float, ...]:
        """One time per generated token: each chunk's arrival repeated for the tokens it carried.

        When the server's count exceeds the chunks' (tokens that produced no text of their own,
        e.g. an unfinished UTF-8 sequence at the end), the rest arrived with the last chunk."""
        times: list[float] = []
        for arrived, tokens in zip(self.chunk_times_s, self.chunk_tokens):
            times.extend([arrived] * tokens)
        missing = self.completion_tokens - len(times)
        if missing > 0 and times:
            times.extend([times[-1]] * missing)
        return tuple(times)

    def timing(self, reference: str = "send") -> RequestTiming | None:
        """The request's token times against its send or its scheduled time (None if it failed)."""
        if not self.ok:
            return None
        start = self.send_s if reference == "send" else self.scheduled_s
        return RequestTiming(start_s=start, token_times_s=self.token_times_s(), prompt_tokens=self.prompt_tokens_server or 0)  # type: ignore[arg-type]

    def e2e_s(self, reference: str = "send") -> float | None:
        if not self.ok:
            return None
        start = self.send_s if reference == "send" else self.scheduled_s
        return self.done_s - start  # type: ignore[operator]

    def chunk_gaps_s(self) -> list[float]:
        times = [t for t, n in zip(self.chunk_times_s, self.chunk_tokens) if n > 0]
        return [b - a for a, b in zip(times, times[1:])]


def percentile_key(q: float) -> str:
    """50 -> ``p50``, 99.9 -> ``p999``."""
    return "p" + (str(int(q)) if float(q).is_integer() else str(q).replace(".", ""))


def percentile_interval(sorted_values: np.ndarray, q: float, confidence: float = PERCENTILE_CONFIDENCE) -> tuple[float, float] | None:
    """A distribution-free interval for the ``q``-th percentile: the order statistics whose ranks
    bracket a Binomial(n, q/100) draw with ``confidence`` (no resampling; exact for any distribution).
    None when there are too few values to reach that confidence on both sides."""
    from scipy.stats import binom

    n = len(sorted_values)
    if n < 2:
        return None
    tail = (1 - confidence) / 2
    lower_rank = int(binom.ppf(tail, n, q / 100))  # P(B < lower_rank) <= tail
    upper_rank = int(binom.ppf(1 - tail, n, q / 100)) + 1
    if lower_rank < 1 or upper_rank > n:
        return None
    return float(sorted_values[lower_rank - 1]), float(sorted_values[upper_rank - 1])


def distribution(values: Sequence[float]) -> dict[str, object] | None:
    """p50/p90/p99/p99.9/max/mean of ``values`` with a 95% interval around each percentile."""
    if not len(values):
        return None
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    summary: dict[str, object] = {"n": int(len(ordered)), "mean": float(ordered.mean()), "max": float(ordered[-1])}
    for q in PERCENTILES:
        name = percentile_key(q)
        summary[name] = float(np.percentile(ordered, q))
        interval = percentile_interval(ordered, q)
        summary[f"{name}_ci"] = list(interval) if interval else None
    return summary


def _value(dist: Mapping[str, object] | None, name: str) -> float | None:
    if dist is None:
        return None
    value = dist.get(name)
    return float(value) if isinstance(value, (int, float)) else None


def meets_slo(request: ServedRequest, slo: Slo) -> bool:
    """Completed, and within every bound, TTFT and E2E from the scheduled time (what a user sees)."""
    timing = request.timing("schedule")
    if timing is None:
        return False
    checks = ((slo.ttft_s, timing.ttft_s), (slo.tpot_s, timing.tpot_s), (slo.e2e_s, request.e2e_s("schedule")))
    return all(bound is None or (value is not None and value <= bound) for bound, value in checks)


@dataclass(frozen=True)
class LoadPoint:
    """What a round offered: the load mode and its parameters (recorded under ``load``)."""

    mode: str  # "closed", "constant", "poisson"
    concurrency: int | None = None
    rate_rps: float | None = None
    max_in_flight: int | None = None
    seed: int | None = None

    @property
    def open_loop(self) -> bool:
        return self.mode != "closed"

    def as_record(self) -> dict[str, object]:
        labels = {"closed": "closed loop", "constant": "open loop, constant arrivals", "poisson": "open loop, Poisson arrivals"}
        return {"mode": self.mode, "label": labels[self.mode], "concurrency": self.concurrency,
                "rate_rps": self.rate_rps, "max_in_flight": self.max_in_flight, "seed": self.seed}


@dataclass(frozen=True)
class RoundLoad:
    """One round's requests (warm-ups excluded by the caller) and the client's own cost."""

    requests: tuple[ServedRequest, ...]
    client_cpu_s: float
    wall_s: float


#: the client could not keep its schedule when it achieved less than this share of the schedule's rate
MIN_ACHIEVED_FRACTION = 0.95
#: ... or its lag behind the schedule exceeded this share of the latency it reports, quantile for
#: quantile (p50 lag against p50 latency, p99 against p99): from the schedule a lag is charged to
#: the server, so 5% is the error we accept in what the case reports ...
LAG_LATENCY_FRACTION = 0.05
#: ... or this share of the mean gap between arrivals (a lag that large reshapes the arrival
#: process: arrivals meant to be spread out go out bunched) ...
LAG_GAP_FRACTION = 0.25
#: ... with a floor (an event loop's timer granularity and a scheduling tick on a busy 2-core VM)
LAG_FLOOR_S = 0.001
#: ... or the client used this share of a core (a saturated client measures itself)
MAX_CLIENT_CPU_FRACTION = 0.9


def self_check(requests: Sequence[ServedRequest], point: LoadPoint, client_cpu_s: float, wall_s: float,
               latency_p50_s: float | None, latency_p99_s: float | None) -> dict[str, object]:
    """Achieved vs scheduled rate, schedule lag, client CPU; ``valid`` false with the reasons."""
    lags = [r.dispatched_s - r.scheduled_s for r in requests if r.dispatched_s is not None]
    cpu_fraction = client_cpu_s / wall_s if wall_s > 0 else None
    check: dict[str, object] = {"client_cpu_fraction": cpu_fraction, "dispatch_lag_p50_s": None, "dispatch_lag_p99_s": None,
                                "achieved_rate_rps": None, "schedule_rate_rps": None, "lag_bound_p99_s": None}
    reasons: list[str] = []
    if point.open_loop and len(requests) > 1:
        scheduled = sorted(r.scheduled_s for r in requests)
        dispatched = sorted(r.dispatched_s for r in requests if r.dispatched_s is not None)
        schedule_span = scheduled[-1] - scheduled[0]
        schedule_rate = (len(scheduled) - 1) / schedule_span if schedule_span > 0 else None
        achieved_span = dispatched[-1] - dispatched[0] if len(dispatched) > 1 else 0.0
        achieved = (len(dispatched) - 1) / achieved_span if achieved_span > 0 else None
        lag_p50, lag_p99 = (float(v) for v in np.percentile(lags, [50, 99])) if lags else (None, None)
        gap_bound = LAG_GAP_FRACTION / schedule_rate if schedule_rate else math.inf

        def bound(latency: float | None) -> float:
            return max(LAG_FLOOR_S, min(gap_bound, LAG_LATENCY_FRACTION * latency if latency else math.inf))

        bound_p50, bound_p99 = bound(latency_p50_s), bound(latency_p99_s)
        check.update(achieved_rate_rps=achieved, schedule_rate_rps=schedule_rate, dispatch_lag_p50_s=lag_p50,
                     dispatch_lag_p99_s=lag_p99, lag_bound_p99_s=bound_p99 if math.isfinite(bound_p99) else None)
        if schedule_rate and (achieved is None or achieved < MIN_ACHIEVED_FRACTION * schedule_rate):
            reasons.append(f"the client achieved {achieved or 0:.2f} requests/s of the schedule's {schedule_rate:.2f} (< {MIN_ACHIEVED_FRACTION:.0%})")
        for name, lag, limit in (("p50", lag_p50, bound_p50), ("p99", lag_p99, bound_p99)):
            if lag is not None and lag > limit:
                reasons.append(f"{name} lag behind the schedule {lag * 1e3:.1f} ms > {limit * 1e3:.1f} ms")
    if cpu_fraction is not None and cpu_fraction > MAX_CLIENT_CPU_FRACTION:
        reasons.append(f"the client used {cpu_fraction:.0%} of a core (> {MAX_CLIENT_CPU_FRACTION:.0%}): it measured itself")
    check["valid"] = not reasons
    check["invalid_reason"] = "; ".join(reasons) or None
    return check


def _span_s(requests: Sequence[ServedRequest]) -> float | None:
    """First scheduled send → last completion (or last failure seen)."""
    ends = [r.done_s for r in requests if r.done_s is not None]
    if not requests or not ends:
        return None
    span = max(ends) - min(r.scheduled_s for r in requests)
    return span if span > 0 else None


def round_summary(rnd: RoundLoad, slo: Slo) -> dict[str, float | None]:
    """One round's values a comparison judges (``round_metrics``): percentiles over its requests."""
    requests = rnd.requests
    done = [r for r in requests if r.ok]
    ttft = [t.ttft_s for t in (r.timing("schedule") for r in done) if t is not None and t.ttft_s is not None]
    tpot = [t.tpot_s for t in (r.timing() for r in done) if t is not None and t.tpot_s is not None]
    e2e = [r.e2e_s("schedule") for r in done]
    span = _span_s(requests)

    def pct(values: Sequence[float | None], q: float) -> float | None:
        kept = [v for v in values if v is not None]
        return float(np.percentile(kept, q)) if kept else None

    return {
        "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99),
        "tpot_p50_s": pct(tpot, 50), "tpot_p99_s": pct(tpot, 99),
        "e2e_p99_s": pct(e2e, 99),
        "output_tokens_per_s": sum(r.completion_tokens for r in done) / span if span else None,
        "goodput_rps": sum(meets_slo(r, slo) for r in requests) / span if span else None,
        "error_rate": (len(requests) - len(done)) / len(requests) if requests else None,
    }


def served_metrics(rounds: Sequence[RoundLoad], point: LoadPoint, slo: Slo) -> dict[str, object]:
    """The ``extra_info`` keys of a served case from its timed rounds' requests (schema: served)."""
    requests = [r for rnd in rounds for r in rnd.requests]
    done = [r for r in requests if r.ok]
    from_send = [r.timing("send") for r in done]
    from_schedule = [r.timing("schedule") for r in done]
    ttft_send = [t.ttft_s for t in from_send if t is not None and t.ttft_s is not None]
    ttft_sched = [t.ttft_s for t in from_schedule if t is not None and t.ttft_s is not None]
    tpot = [t.tpot_s for t in from_send if t is not None and t.tpot_s is not None]
    itl_token = [g for t in from_send if t is not None for g in t.token_gaps_s()]
    itl_chunk = [g for r in done for g in r.chunk_gaps_s()]
    e2e_send = [r.e2e_s("send") for r in done]
    e2e_sched = [r.e2e_s("schedule") for r in done]
    queue_wait = [r.send_s - r.dispatched_s for r in done if r.send_s is not None and r.dispatched_s is not None]
    distributions = {
        "ttft_from_send_s": distribution(ttft_send),
        "ttft_from_schedule_s": distribution(ttft_sched),
        "tpot_s": distribution(tpot),
        "itl_per_token_s": distribution(itl_token),
        "itl_per_chunk_s": distribution(itl_chunk),
        "e2e_from_send_s": distribution(e2e_send),  # type: ignore[arg-type]
        "e2e_from_schedule_s": distribution(e2e_sched),  # type: ignore[arg-type]
        "client_queue_wait_s": distribution(queue_wait),
    }
    spans = [s for s in (_span_s(rnd.requests) for rnd in rounds) if s]
    window = sum(spans)
    output_tokens = sum(r.completion_tokens for r in done)
    prompt_tokens = sum(r.prompt_tokens_server or r.prompt_tokens_client or 0 for r in done)
    good = sum(meets_slo(r, slo) for r in requests)
    # the lag is judged against the first latency the case reports: TTFT (generation) or the whole request (Triton)
    first = distributions["ttft_from_send_s"] or distributions["e2e_from_send_s"]
    checks = [self_check(rnd.requests, point, rnd.client_cpu_s, rnd.wall_s, _value(first, "p50"), _value(first, "p99")) for rnd in rounds]
    worst = _worst_check(checks)
    finish = sorted({r.finish_reason for r in done if r.finish_reason})
    errors = sorted({r.error for r in requests if r.error})
    return {
        "load": point.as_record(),
        "slo": slo.as_record(),
        "requests_sent": len(requests),
        "requests_completed": len(done),
        "requests_failed": len(requests) - len(done),
        "error_rate": (len(requests) - len(done)) / len(requests) if requests else None,
        "errors": errors[:5],
        "finish_reasons": finish,
        "token_count_mismatches": sum(r.token_count_mismatch for r in requests),
        "latency_distributions": distributions,
        # the headline keys shared with local generation (from the send, as local timing starts at the call)
        "ttft_s": _value(distributions["ttft_from_send_s"], "p50"),
        "ttft_p99_s": _value(distributions["ttft_from_send_s"], "p99"),
        "tpot_s": _value(distributions["tpot_s"], "p50"),
        "e2e_s": _value(distributions["e2e_from_send_s"], "p50"),
        **{f"token_latency_{percentile_key(q)}_s": _value(distributions["itl_per_token_s"], percentile_key(q)) for q in (50, 90, 99)},
        "ttft_p99_from_schedule_s": _value(distributions["ttft_from_schedule_s"], "p99"),
        "e2e_p99_from_schedule_s": _value(distributions["e2e_from_schedule_s"], "p99"),
        "tpot_p99_s": _value(distributions["tpot_s"], "p99"),
        "chunk_latency_p99_s": _value(distributions["itl_per_chunk_s"], "p99"),
        "requests_per_s": len(done) / window if window else None,
        "output_tokens_per_s": output_tokens / window if window else None,
        "total_tokens_per_s": (output_tokens + prompt_tokens) / window if window else None,
        "goodput_rps": good / window if window else None,
        "good_fraction": good / len(requests) if requests else None,
        "self_check": worst,
        "valid": bool(worst.get("valid")),
        "invalid_reason": worst.get("invalid_reason"),
        "round_metrics": _per_round([round_summary(rnd, slo) for rnd in rounds]),
    }


def _worst_check(checks: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The rounds' self-checks folded: invalid if any round was, the worst figure of each."""
    if not checks:
        return {"valid": False, "invalid_reason": "no timed round"}
    worst: dict[str, object] = dict(checks[0])
    for check in checks[1:]:
        for name in ("client_cpu_fraction", "dispatch_lag_p50_s", "dispatch_lag_p99_s"):
            a, b = worst.get(name), check.get(name)
            if isinstance(b, float) and (not isinstance(a, float) or b > a):
                worst[name] = b
        a_rate, b_rate = worst.get("achieved_rate_rps"), check.get("achieved_rate_rps")
        if isinstance(b_rate, float) and (not isinstance(a_rate, float) or b_rate < a_rate):
            worst["achieved_rate_rps"], worst["schedule_rate_rps"] = b_rate, check.get("schedule_rate_rps")
    reasons = [str(c["invalid_reason"]) for c in checks if c.get("invalid_reason")]
    worst["valid"] = not reasons
    worst["invalid_reason"] = "; ".join(dict.fromkeys(reasons)) or None
    return worst


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
