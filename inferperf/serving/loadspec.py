"""``--load``: the served load points a user asks for, each one pytest case.

A spec is ``MODE[:VALUES][:KEY=VALUE...]``; ``--load`` may be given more than once::

    closed:1,4,16               closed loop at 1, 4 and 16 streams      -> closed_c1, closed_c4, closed_c16
    poisson:10,20,50            Poisson arrivals at 10, 20, 50 requests/s -> poisson_r10, ...
    poisson:8:cap=2             ... at most 2 requests in flight          -> poisson_r8_cap2
    gamma:10:burstiness=0.5     gamma gaps, shape 0.5 (burstier than Poisson) -> gamma_r10_b0.5
    constant:5                  evenly spaced arrivals                    -> constant_r5
    sessions:4                  multi-turn sessions, 4 at once (--traffic multiturn or sharegpt)
    trace[:speed=2]             --traffic trace:FILE's own arrival times, 2x faster
    sweep[:points=4]            one stream, then saturation, then 4 rates evenly between them

Keys: ``cap=N`` (open loop: requests in flight), ``burstiness=K`` (gamma), ``seed=N`` (arrivals),
``requests=N`` (requests a round sends), ``duration=S`` (seconds a round lasts: an open loop's
arrivals span it; closed loops and sessions stop taking requests after it), ``streams=N`` (the
sweep's saturation point: closed loop at N streams, default 16), ``speed=X`` (trace).

Cases are parametrized at collection, so ``-k`` selects them and ``compare``/``history``/``ab`` judge
each point on its own. A sweep's rates depend on what its first two points measured, so the names
say where a rate sits (``sweep_r1of4``) and each record says the rate it offered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferperf.metrics.requests import LoadPoint

MODES = ("closed", "sessions", "constant", "poisson", "gamma", "trace", "sweep")
#: the streams of a sweep's saturation point when the spec does not say
SWEEP_STREAMS = 16
SWEEP_POINTS = 4
_KEYS = {"cap", "burstiness", "seed", "requests", "duration", "streams", "speed", "points"}


class LoadSpecError(ValueError):
    """A ``--load`` spec that does not parse: the message names the option and the spec."""


@dataclass(frozen=True)
class NamedLoad:
    """One case's load: its name in the case id, the point, and how long its round is."""

    name: str
    point: LoadPoint
    #: requests one round sends (None: from the tier's window)
    requests: int | None = None
    #: a sweep's open-loop point: its place among the sweep's rates (1-based) and their count
    sweep_step: tuple[int, int] | None = None


def _number(text: str) -> str:
    """``10.0`` -> ``10``, ``0.5`` -> ``0.5``: as a case name shows a value."""
    value = float(text)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _fail(spec: str, why: str) -> LoadSpecError:
    return LoadSpecError(f"--load {spec!r}: {why} (e.g. closed:1,4,16  poisson:10,20:cap=8  gamma:10:burstiness=0.5  sweep:points=4)")


def parse_load(spec: str) -> list[NamedLoad]:
    """One ``--load`` spec -> its cases' loads, in the order given."""
    fields = [f.strip() for f in spec.strip().split(":")]
    mode = fields[0]
    if mode not in MODES:
        raise _fail(spec, f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    values: list[str] = []
    options: dict[str, str] = {}
    for part in fields[1:]:
        if not part:
            raise _fail(spec, "an empty field")
        if "=" in part:
            key, _, value = part.partition("=")
            if key not in _KEYS:
                raise _fail(spec, f"unknown key {key!r}; one of {', '.join(sorted(_KEYS))}")
            options[key] = value
        elif values:
            raise _fail(spec, f"a second list of values {part!r}")
        else:
            values = [v.strip() for v in part.split(",")]
    try:
        numbers = [float(v) for v in values]
        cap = int(options["cap"]) if "cap" in options else None
        seed = int(options.get("seed", "0"))
        requests = int(options["requests"]) if "requests" in options else None
        duration = float(options["duration"]) if "duration" in options else None
        burstiness = float(options["burstiness"]) if "burstiness" in options else None
        streams = int(options.get("streams", SWEEP_STREAMS))
        speed = float(options.get("speed", "1"))
        points = int(options.get("points", SWEEP_POINTS))
    except ValueError as exc:
        raise _fail(spec, f"not a number ({exc})") from None
    if any(n <= 0 for n in numbers) or (cap is not None and cap < 1) or (requests is not None and requests < 1) or (
            duration is not None and duration <= 0) or (burstiness is not None and burstiness <= 0) or streams < 1 or speed <= 0 or points < 1:
        raise _fail(spec, "every value must be positive")
    if burstiness is not None and mode != "gamma":
        raise _fail(spec, "burstiness= is for gamma arrivals")
    if cap is not None and mode in ("closed", "sessions"):
        raise _fail(spec, "cap= is for open-loop arrivals (a closed loop's streams are its cap)")
    suffix = (f"_cap{cap}" if cap else "") + (f"_n{requests}" if requests else "") + (f"_d{_number(str(duration))}" if duration else "")
    if mode in ("trace", "sweep"):
        if values:
            raise _fail(spec, f"{mode} takes keys only ({'speed=' if mode == 'trace' else 'points=, streams='})")
        if mode == "trace":
            name = "trace" + (f"_x{_number(str(speed))}" if speed != 1 else "") + suffix
            return [NamedLoad(name, LoadPoint("trace", max_in_flight=cap, seed=seed, speed=speed), requests)]
        one = NamedLoad("sweep_c1" + suffix, LoadPoint("closed", concurrency=1, duration_s=duration), requests)
        saturated = NamedLoad(f"sweep_c{streams}" + suffix, LoadPoint("closed", concurrency=streams, duration_s=duration), requests)
        between = [NamedLoad(f"sweep_r{i}of{points}" + suffix, LoadPoint("poisson", rate_rps=None, max_in_flight=cap, seed=seed), requests,
                             sweep_step=(i, points)) for i in range(1, points + 1)]
        return [one, saturated, *between]
    if not numbers:
        raise _fail(spec, f"{mode} needs its values ({'streams' if mode in ('closed', 'sessions') else 'requests/s'})")
    loads = []
    for number, text in zip(numbers, values):
        if mode in ("closed", "sessions"):
            if not number.is_integer():
                raise _fail(spec, f"streams must be whole numbers, got {text}")
            prefix = "closed_c" if mode == "closed" else "sessions_c"
            point = LoadPoint(mode, concurrency=int(number), duration_s=duration)
        else:
            prefix = f"{mode}_r"
            point = LoadPoint(mode, rate_rps=number, max_in_flight=cap, seed=seed, burstiness=burstiness)
        bursts = f"_b{_number(str(burstiness))}" if burstiness is not None else ""
        loads.append(NamedLoad(f"{prefix}{_number(text)}{bursts}{suffix}", point, requests))
    if mode not in ("closed", "sessions") and duration is not None:
        # an open loop bounded by duration: its arrivals span it at the rate asked for
        loads = [replace(load, requests=load.requests or max(1, round((load.point.rate_rps or 0) * duration))) for load in loads]
    return loads


def parse_loads(specs: list[str]) -> dict[str, NamedLoad]:
    """Every ``--load`` -> the cases' loads by name (a name given twice is one case)."""
    loads: dict[str, NamedLoad] = {}
    for spec in specs:
        for load in parse_load(spec):
            loads.setdefault(load.name, load)
    return loads


def sweep_rate(step: tuple[int, int], single_rps: float, saturated_rps: float) -> float:
    """A sweep's open-loop rate: ``step`` of ``count`` evenly between what one stream carried and what
    the saturated closed loop did (both requests/s), never below a tenth of the saturated rate."""
    index, count = step
    low, high = min(single_rps, saturated_rps), max(single_rps, saturated_rps)
    return max(high / 10, low + (high - low) * index / (count + 1))
