"""The load generator's self-check: could the client keep the load it was asked for, and are its
stamps as good as the figures it reports need?

**Send side.** The achieved against the scheduled arrival rate; the lag of each dispatch behind its
scheduled time (from the schedule a lag is charged to the server), p50 and p99, each judged against
the fidelity bound — or 5% of the latency the case reports at that quantile, where that is larger —
and never more than a quarter of the gap between arrivals (a lag that large reshapes the arrival
process).

**Receive side.** A chunk's arrival is the kernel's receive stamp of the read that brought it
(``inferperf.serving.wire``): exact when the read ended with that chunk, and otherwise up to the
time since the connection's previous read early (its bytes waited in the socket behind a later
chunk's) — the chunk's ``slack``. So each TTFT lies in [measured − slack, measured] and each gap
in [gap − slack, gap + the previous chunk's slack], and the p50 and p99 the record reports can be
off by no more than the percentiles of those bounds differ: ``stamp_error_bound_*``. A round whose
bound exceeds the fidelity bound (1 ms at p50, 5 ms at p99) is invalid; a round whose chunks all
kept their own stamps has a bound of 0 however busy the loop was. Without kernel stamps (not
Linux), the event loop's lateness for a short timer stands in for the slack.

**The client's CPU**: a client process over 90% of a core measured itself (with worker processes,
the busiest one decides).

A round that fails any check is ``valid: false`` with the reasons, and ``compare``/``report``
refuse to read its latencies as the server's.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from inferperf.metrics.distribution import percentile
from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest

#: the fidelity bound: the latencies a record reports within this much of the truth, p50 and p99
FIDELITY_P50_S = 0.001
FIDELITY_P99_S = 0.005
#: the client could not keep its schedule when it achieved less than this share of the schedule's rate
MIN_ACHIEVED_FRACTION = 0.95
#: ... or its lag behind the schedule exceeded the fidelity bound or this share of the latency it
#: reports at the same quantile, whichever is larger ...
LAG_LATENCY_FRACTION = 0.05
#: ... and never more than this share of the mean gap between arrivals
LAG_GAP_FRACTION = 0.25
#: ... or the client used this share of a core (a saturated client measures itself)
MAX_CLIENT_CPU_FRACTION = 0.9


def _percentile_shift(measured: Sequence[float], low: Sequence[float], high: Sequence[float], q: float) -> float:
    """How far the ``q``-th percentile of values known to lie in [low, high] can be from that of ``measured``."""
    center = percentile(measured, q) or 0.0
    return max(center - (percentile(low, q) or 0.0), (percentile(high, q) or 0.0) - center)


def stamp_error_bounds(requests: Sequence[ServedRequest], loop_lag_s: float | None = None) -> dict[str, float | None]:
    """How far the reported TTFT and per-chunk gap percentiles can be from the truth, from the
    stamps' own slack (``loop_lag_s`` stands in for it where the stamps are user-space only)."""
    ttft: list[float] = []
    ttft_low: list[float] = []
    gaps: list[float] = []
    gap_low: list[float] = []
    gap_high: list[float] = []
    for record in requests:
        times = record.chunk_times_s
        if not record.ok or not times or record.send_s is None:
            continue
        slack = record.chunk_slack_s if len(record.chunk_slack_s) == len(times) else [loop_lag_s or 0.0] * len(times)
        measured = times[0] - record.send_s
        ttft.append(measured)
        # the request may have left up to send_slack_s after its stamp, its first token arrived up to slack[0]
        # before its own: the true TTFT is at most that much shorter
        ttft_low.append(measured - slack[0] - record.send_slack_s)
        for k in range(1, len(times)):
            gap = times[k] - times[k - 1]
            gaps.append(gap)
            gap_low.append(gap - slack[k])
            gap_high.append(gap + slack[k - 1])
    if not ttft:
        return {"ttft_p50": None, "ttft_p99": None, "itl_p50": None, "itl_p99": None}
    return {
        "ttft_p50": _percentile_shift(ttft, ttft_low, ttft, 50),
        "ttft_p99": _percentile_shift(ttft, ttft_low, ttft, 99),
        "itl_p50": _percentile_shift(gaps, gap_low, gap_high, 50) if gaps else None,
        "itl_p99": _percentile_shift(gaps, gap_low, gap_high, 99) if gaps else None,
    }


def _send_side(requests: Sequence[ServedRequest], point: LoadPoint, latency_p50_s: float | None, latency_p99_s: float | None,
               check: dict[str, object], reasons: list[str]) -> None:
    lags = [r.dispatched_s - r.scheduled_s for r in requests if r.dispatched_s is not None]
    scheduled = sorted(r.scheduled_s for r in requests)
    dispatched = sorted(r.dispatched_s for r in requests if r.dispatched_s is not None)
    schedule_span = scheduled[-1] - scheduled[0]
    schedule_rate = (len(scheduled) - 1) / schedule_span if schedule_span > 0 else None
    achieved_span = dispatched[-1] - dispatched[0] if len(dispatched) > 1 else 0.0
    achieved = (len(dispatched) - 1) / achieved_span if achieved_span > 0 else None
    lag_p50, lag_p99 = percentile(lags, 50), percentile(lags, 99)
    gap_bound = LAG_GAP_FRACTION / schedule_rate if schedule_rate else math.inf

    def bound(fidelity: float, latency: float | None) -> float:
        return min(gap_bound, max(fidelity, LAG_LATENCY_FRACTION * latency if latency else 0.0))

    bound_p50, bound_p99 = bound(FIDELITY_P50_S, latency_p50_s), bound(FIDELITY_P99_S, latency_p99_s)
    check.update(achieved_rate_rps=achieved, schedule_rate_rps=schedule_rate, dispatch_lag_p50_s=lag_p50,
                 dispatch_lag_p99_s=lag_p99, lag_bound_p99_s=bound_p99 if math.isfinite(bound_p99) else None)
    if schedule_rate and (achieved is None or achieved < MIN_ACHIEVED_FRACTION * schedule_rate):
        reasons.append(f"the client achieved {achieved or 0:.2f} requests/s of the schedule's {schedule_rate:.2f} (< {MIN_ACHIEVED_FRACTION:.0%})")
    for name, lag, limit in (("p50", lag_p50, bound_p50), ("p99", lag_p99, bound_p99)):
        if lag is not None and lag > limit:
            reasons.append(f"{name} lag behind the schedule {lag * 1e3:.1f} ms > {limit * 1e3:.1f} ms")


def _receive_side(rnd: RoundLoad, check: dict[str, object], reasons: list[str]) -> None:
    requests = rnd.requests
    lags = [lag for r in requests for lag in r.receive_lags_s]
    chunks = sum(len(r.chunk_times_s) for r in requests)
    kernel = any(r.stamp_source == "kernel" for r in requests)
    loop_lag_p99 = percentile(list(rnd.loop_lags_s), 99)
    # the loop's lateness stands in for the slack of a request none of whose reads the kernel stamped
    bounds = stamp_error_bounds(requests, loop_lag_p99)
    check.update(
        stamp_source="kernel" if kernel else "user",
        receive_lag_p50_s=percentile(lags, 50), receive_lag_p99_s=percentile(lags, 99),
        loop_lag_p99_s=loop_lag_p99,
        shared_read_chunk_fraction=sum(r.shared_read_chunks for r in requests) / chunks if chunks else None,
        **{f"{name}_stamp_error_bound_s": value for name, value in bounds.items()},
    )
    for name, value in bounds.items():
        limit = FIDELITY_P50_S if name.endswith("p50") else FIDELITY_P99_S
        if value is not None and value > limit:
            metric, quantile = name.split("_")
            reasons.append(f"arrival stamps uncertain by up to {value * 1e3:.1f} ms at {quantile} {metric.upper()} (> {limit * 1e3:g} ms): "
                           "the client read chunks late")


def self_check(rnd: RoundLoad, point: LoadPoint, latency_p50_s: float | None, latency_p99_s: float | None) -> dict[str, object]:
    """One round's send side, receive side and CPU; ``valid`` false with the reasons."""
    # the busiest client process decides: each is one core's client
    cpu_fraction = max(rnd.worker_cpu_fractions) if rnd.worker_cpu_fractions else rnd.client_cpu_s / rnd.wall_s if rnd.wall_s > 0 else None
    check: dict[str, object] = {"client_cpu_fraction": cpu_fraction, "dispatch_lag_p50_s": None, "dispatch_lag_p99_s": None,
                                "achieved_rate_rps": None, "schedule_rate_rps": None, "lag_bound_p99_s": None}
    reasons: list[str] = []
    if point.open_loop and len(rnd.requests) > 1:
        _send_side(rnd.requests, point, latency_p50_s, latency_p99_s, check, reasons)
    _receive_side(rnd, check, reasons)
    if rnd.clock:
        uncertainty = max(float(c["uncertainty_s"]) for c in rnd.clock.values())
        check["clock_uncertainty_s"] = uncertainty
        if uncertainty > FIDELITY_P50_S:
            reasons.append(f"the workers' clocks are known to {uncertainty * 1e3:.1f} ms (> {FIDELITY_P50_S * 1e3:g} ms): their arrivals may be misaligned")
    if cpu_fraction is not None and cpu_fraction > MAX_CLIENT_CPU_FRACTION:
        reasons.append(f"the client used {cpu_fraction:.0%} of a core (> {MAX_CLIENT_CPU_FRACTION:.0%}): it measured itself")
    check["valid"] = not reasons
    check["invalid_reason"] = "; ".join(reasons) or None
    return check


#: the figures ``worst_check`` keeps the largest of, over the rounds
_WORST_HIGHEST = (
    "client_cpu_fraction", "dispatch_lag_p50_s", "dispatch_lag_p99_s", "receive_lag_p50_s", "receive_lag_p99_s", "loop_lag_p99_s",
    "shared_read_chunk_fraction", "ttft_p50_stamp_error_bound_s", "ttft_p99_stamp_error_bound_s", "itl_p50_stamp_error_bound_s",
    "itl_p99_stamp_error_bound_s", "clock_uncertainty_s",
)


def worst_check(checks: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The rounds' self-checks folded: invalid if any round was, the worst figure of each."""
    if not checks:
        return {"valid": False, "invalid_reason": "no timed round"}
    worst: dict[str, object] = dict(checks[0])
    for check in checks[1:]:
        for name in _WORST_HIGHEST:
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
