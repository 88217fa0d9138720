"""The load generator's self-check: could the client keep the load it was asked for?

From a round's requests and the client's CPU time: the achieved against the scheduled arrival
rate, the lag of each dispatch behind its scheduled time (p50 and p99, each judged against the
latency the case reports at the same quantile and against the gap between arrivals), and the
share of a core the client used. A round that fails any check is ``valid: false`` with the
reasons, and ``compare``/``report`` refuse to read its latencies as the server's.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from inferperf.metrics.distribution import percentile
from inferperf.metrics.requests import LoadPoint, ServedRequest

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
        lag_p50, lag_p99 = percentile(lags, 50), percentile(lags, 99)
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


def worst_check(checks: Sequence[Mapping[str, object]]) -> dict[str, object]:
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
