"""Technique 6, served: text generation over an OpenAI-compatible HTTP API, under closed- and open-loop load.

The server hosts technique 6's saved model directory — ``transformers serve`` with and without
continuous batching, llama.cpp's server on a GGUF of the same weights when ``[llamacpp]`` is
installed, vLLM from its own environment (``scripts/make-vllm-env``) with prefix caching on and,
where the traffic shares prefixes, off — or the user's own fleet with ``--served-url
openai+http://host:port/v1 --served-model NAME``. One load generator
(``inferperf.serving.loadgen``) sends each round's requests: the tier's load points or
``--load``'s (closed loops, constant / Poisson / gamma arrivals, multi-turn sessions, a trace's
own times, a sweep), each point one case; the requests are ``--traffic``'s, on ``--served-api``'s
endpoints. A round is bounded by its requests (or ``duration=``); items are output tokens.
Latency is recorded from the send and from the scheduled time, the client checks itself (a round
it could not schedule is marked invalid, never reported as the server's latency), and a server
with Prometheus ``/metrics`` is sampled through each round. The ``capacity`` case of each server
finds the highest Poisson rate whose p99 TTFT and TPOT meet the SLO (MLPerf's Server question):
a bounded search, then repeated probes on both sides of the boundary, reported as an interval.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from fixtures.served_generation import SERVERS, served_parts, shares_prefixes, write_request_records
from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.metrics.requests import LoadPoint, RoundLoad
from inferperf.metrics.served import Slo, capacity_interval, parse_slo, served_metrics, slo_met
from inferperf.params import parametrize_cases
from inferperf.serving.loadgen import round_requests, search_max_rate
from inferperf.serving.loadspec import NamedLoad, parse_loads, sweep_rate
from inferperf.serving.runners import expected_tokens_per_s
from inferperf.settings import Budget, Settings

if TYPE_CHECKING:
    from fixtures.served_generation import ServedTarget

TECHNIQUE = "generation"
MODEL: dict[Tier, str] = {"quick": "llama_tiny", "standard": "qwen2_0p5b"}
LENGTHS: dict[Tier, tuple[int, int]] = {"quick": (128, 32), "standard": (512, 128)}
#: load points per tier (closed: streams; open: Poisson rate, optional in-flight cap)
LOADS: dict[Tier, dict[str, LoadPoint]] = {
    "quick": {
        "closed_c4": LoadPoint("closed", concurrency=4),
        "poisson_r4": LoadPoint("poisson", rate_rps=4.0, seed=0),
        # an arrival rate above what two connections carry: what a client with a fixed pool (a
        # closed-loop tool) would hide — the wait for a connection is latency from the schedule
        "poisson_r8_cap2": LoadPoint("poisson", rate_rps=8.0, max_in_flight=2, seed=0),
    },
    "standard": {
        "closed_c1": LoadPoint("closed", concurrency=1),
        "closed_c8": LoadPoint("closed", concurrency=8),
        "poisson_r1": LoadPoint("poisson", rate_rps=1.0, seed=0),
        "poisson_r2": LoadPoint("poisson", rate_rps=2.0, seed=0),
        "poisson_r4_cap4": LoadPoint("poisson", rate_rps=4.0, max_in_flight=4, seed=0),
    },
}
#: the seconds of arrivals one open-loop round schedules
WINDOW_S: dict[Tier, float] = {"quick": 3.0, "standard": 20.0}
DEFAULT_SLO: dict[Tier, Slo] = {"quick": Slo(ttft_s=0.25, tpot_s=0.02), "standard": Slo(ttft_s=2.0, tpot_s=0.2)}
#: capacity search: Poisson rates probed between these bounds, at most this many probes, then this
#: many repeats (other arrival seeds) at the boundary's two sides
CAPACITY: dict[Tier, tuple[float, float, int, int]] = {"quick": (1.0, 16.0, 4, 1), "standard": (0.25, 16.0, 6, 2)}
#: a case whose requests fail more often than this fails (after its record is written)
MAX_ERROR_RATE = 0.05
#: a capacity probe the client could not keep is run again this many times before it counts
INVALID_RETRIES = 2
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=3, warmup_rounds=1), "standard": Budget(rounds=5, warmup_rounds=1)}


def _server_names(settings: Settings, with_url: bool) -> tuple[str, ...]:
    if with_url:
        return ("url",)
    return tuple(name for name in SERVERS if name != "vllmnopc" or shares_prefixes(settings))


def loads_for(settings: Settings) -> dict[str, NamedLoad]:
    """The load points: ``--load``'s, or the tier's."""
    if settings.loads:
        return parse_loads(list(settings.loads))
    return {name: NamedLoad(name, point) for name, point in LOADS[settings.tier].items()}


def served_cases(settings: Settings, with_url: bool = False) -> list[Case]:
    """Each server's load points per endpoint, then its capacity search: the cases of one server run
    together, so each server starts once a session (starting one costs 10-100 s on 2 cores)."""
    prompt_len, output_len = LENGTHS[settings.tier]
    cases = []
    for server in _server_names(settings, with_url):
        requires = SERVERS[server][1] if server in SERVERS else ("torch", "genserve")
        for api in settings.served_apis:
            api_part = "chat_" if api == "chat" else ""
            for load in [*loads_for(settings).values(), None]:
                name = load.name if load else "capacity"
                streams = (load.point.concurrency or 1) if load else 1
                cases.append(Case(TECHNIQUE, MODEL[settings.tier], f"served_{server}_{api_part}{name}", "cpu", "fp32", streams,
                                  backend="openai", requires=requires, prompt_len=prompt_len, output_len=output_len))
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # with any --served-url the cases are the URL's (under a Triton URL they skip, saying why)
    from inferperf.session import record_of

    settings = record_of(metafunc.config).settings
    with_url = bool(metafunc.config.getoption("--served-url"))
    if metafunc.function.__name__ == "test_generation_served":
        parametrize_cases(metafunc, lambda tier: served_cases(replace(settings, tier=tier), with_url))


def _slo(settings: Settings) -> Slo:
    return parse_slo(settings.slo) if settings.slo else DEFAULT_SLO[settings.tier]


def _extra(case: Case, target: ServedTarget) -> dict[str, object]:
    endpoint = target.endpoint
    extra: dict[str, object] = {
        "server": endpoint.server, "endpoint": endpoint.base_url, "served_model": endpoint.model,
        "endpoint_api": target.api, "traffic": target.traffic, "agreement": target.agreement,
        "chunk_token_source": ("client tokenizer (" + str(target.traffic.get("tokenizer")) + ")") if target.count_tokens
        else "one per chunk; totals from usage",
    }
    server = served_parts(case)[0]
    if server.startswith("vllm"):
        extra["prefix_caching"] = server == "vllm"
    return extra


def _check_server(target: ServedTarget, rounds: list[RoundLoad]) -> None:
    """A server that died mid-run fails the case with its log's last lines."""
    if target.host is not None and not target.host.alive():
        failed = sum(not r.ok for rnd in rounds for r in rnd.requests)
        pytest.fail(target.host.failure(f"the server died during the load ({failed} requests failed)"), pytrace=False)


#: a duration-bounded closed loop's requests are built ahead: at most this many per stream
DURATION_REQUESTS_PER_STREAM = 64


def _request_count(load: NamedLoad, point: LoadPoint, tier: Tier) -> int:
    """Requests a round of ``load`` sends (sessions: their turns; a trace: its lines, unless ``requests=``)."""
    if load.requests:
        return load.requests
    if point.duration_s and not point.open_loop:
        return (point.concurrency or 1) * DURATION_REQUESTS_PER_STREAM
    if point.mode == "sessions":
        return (point.concurrency or 1) * 2 * SESSION_TURNS
    if point.mode == "trace":
        return 1  # the trace's own requests (build_requests gives them all)
    return round_requests(point, WINDOW_S[tier])


#: multi-turn sessions built for a ``sessions`` load when the traffic does not say (multiturn's default)
SESSION_TURNS = 4


def _sweep_point(load: NamedLoad, anchors: dict[str, float]) -> LoadPoint:
    """A sweep's open-loop point: its rate laid between the one-stream and saturated rates measured."""
    if "single" not in anchors or "saturated" not in anchors:
        pytest.skip("a sweep's rates come from its sweep_c1 and saturated sweep_cN cases: run them first, in the same session")
    assert load.sweep_step is not None
    return replace(load.point, rate_rps=round(sweep_rate(load.sweep_step, anchors["single"], anchors["saturated"]), 3))


def _payloads(target: ServedTarget, point: LoadPoint, count: int) -> list:
    if point.mode == "sessions":  # whole sessions, twice as many as run at once
        wanted = 2 * (point.concurrency or 1)
        return [r for r in target.requests if r.session is not None and r.session < wanted]
    if point.mode == "trace":
        return target.requests[:count] if count > 1 else list(target.requests)
    return target.requests[:count]


def _server_rounds(samples: list[dict[str, object]]) -> dict[str, object] | None:
    """The server's ``/metrics`` over the timed rounds: each round's summary and their means."""
    if not samples:
        return None
    means = {key: sum(float(s[key]) for s in samples if key in s) / sum(key in s for s in samples)  # type: ignore[arg-type]
             for key in sorted({k for s in samples for k in s if k != "samples"})}
    return {**means, "rounds": samples}


def test_generation_served(case: Case, settings: Settings, served_target, sweep_anchors, measure_case, benchmark) -> None:
    server, api, load_name = served_parts(case)
    if load_name == "capacity":
        _served_capacity(case, settings, served_target, measure_case)
        return
    load = loads_for(settings)[load_name]
    point = load.point
    anchors = sweep_anchors.setdefault((server, api), {})
    if load.sweep_step is not None:
        point = _sweep_point(load, anchors)
    count = _request_count(load, point, settings.tier)
    target: ServedTarget = served_target(count, sessions=point.mode == "sessions")
    payloads = _payloads(target, point, count)
    if point.mode == "trace":
        if any(r.arrival_s is None for r in payloads):
            pytest.fail("--load trace replays a trace: give one with --traffic trace:FILE", pytrace=False)
        offsets = tuple(float(r.arrival_s) for r in payloads)
        span = offsets[-1] / (point.speed or 1.0)
        point = replace(point, offsets_s=offsets, rate_rps=round(len(offsets) / span, 3) if span > 0 else None)
    if point.mode == "sessions" and not any(r.session is not None for r in payloads):
        pytest.fail("--load sessions sends multi-turn sessions: give --traffic multiturn:... or sharegpt:FILE", pytrace=False)
    slo = _slo(settings)
    sending = ExitStack()  # the client on the cores the server was not given, until the case ends
    runner = sending.enter_context(target.sending(expected_tokens_per_s(point, case.output_len or 1), single=point.mode == "sessions"))
    prompt_tokens = [r.prompt_tokens for r in payloads]
    rounds: list[RoundLoad] = []
    server_samples: list[dict[str, object]] = []

    def step() -> None:
        if target.sampler is not None:
            target.sampler.start()
        try:
            rounds.append(runner.run(payloads, point, prompt_tokens))
        finally:
            if target.sampler is not None:
                server_samples.append(target.sampler.stop())
        _check_server(target, rounds)

    def warmup() -> None:  # two requests one after the other: connections open, the server warm
        runner.run(payloads[:2], LoadPoint("closed", concurrency=1))
        _check_server(target, rounds)

    def derived(info) -> dict[str, object]:
        timed = int(info["rounds"])  # the step appends timed rounds only (the warm-up has its own function)
        metrics = served_metrics(rounds[:timed], point, slo)
        done = [r for rnd in rounds[:timed] for r in rnd.requests if r.ok]
        by_index = {i: p for i, p in enumerate(payloads)}
        metrics["output_len_forced"] = all(r.length_forced for r in done) and all(
            r.completion_tokens == by_index[r.index].max_tokens for r in done)
        metrics["server_metrics"] = _server_rounds(server_samples[:timed])
        if settings.served_requests_dir is not None:
            write_request_records(settings.served_requests_dir, case, rounds[:timed])
        return metrics

    with sending:
        info = measure_case(
            case, Workload(step, items_per_round=sum(p.max_tokens for p in payloads), inference=False, warmup=warmup),
            BUDGETS, facts=target.facts, extra=_extra(case, target), derive=derived,
        )
    if load.name.startswith("sweep_c") and isinstance(info.get("requests_per_s"), float):
        anchors["single" if point.concurrency == 1 else "saturated"] = float(info["requests_per_s"])  # type: ignore[arg-type]
    if target.agreement.get("compared_with_local"):
        assert target.agreement["served_equals_local"], f"served greedy tokens differ from local ones: {target.agreement}"
    error_rate = info.get("error_rate")
    if isinstance(error_rate, float) and error_rate > MAX_ERROR_RATE:
        pytest.fail(f"{case.case_id}: {error_rate:.0%} of requests failed (> {MAX_ERROR_RATE:.0%}): {info.get('errors')}", pytrace=False)


def _served_capacity(case: Case, settings: Settings, served_target, measure_case) -> None:
    """The highest Poisson rate whose p99 TTFT (from the schedule) and p99 TPOT meet the SLO, no more
    than ``MAX_ERROR_RATE`` of requests failing and the client keeping its schedule: a bisection,
    then ``repeats`` more probes (other arrival seeds) at the highest rate that met it and the
    lowest that did not, so one lucky or unlucky round does not decide; reported as an interval."""
    slo = _slo(settings)
    low, high, probes, repeats = CAPACITY[settings.tier]
    # enough prompts for the longest probe: the search's highest rate
    target: ServedTarget = served_target(round_requests(LoadPoint("poisson", rate_rps=high), WINDOW_S[settings.tier]))
    sending = ExitStack()
    runner = sending.enter_context(target.sending(expected_tokens_per_s(LoadPoint("poisson", rate_rps=high), case.output_len or 1)))
    found: list[dict[str, object]] = []

    result: dict[str, object] = {}

    def probe(rate: float, seed: int = 0) -> bool:
        """One Poisson round at ``rate``; a round the client could not keep (invalid) is not the
        server missing its SLO, so it is run again on the same schedule, up to ``INVALID_RETRIES``
        times; still invalid, the probe counts as a miss and the whole record is marked invalid."""
        point = LoadPoint("poisson", rate_rps=rate, seed=seed)
        payloads = target.requests[: round_requests(point, WINDOW_S[settings.tier])]
        for attempt in range(INVALID_RETRIES + 1):
            rnd = runner.run(payloads, point, [r.prompt_tokens for r in payloads])
            metrics = served_metrics([rnd], point, slo)
            ok = slo_met(metrics, slo, MAX_ERROR_RATE)
            found.append({"rate_rps": rate, "repeat": seed, "attempt": attempt, "meets_slo": ok,
                          "ttft_p99_from_schedule_s": metrics["ttft_p99_from_schedule_s"], "tpot_p99_s": metrics["tpot_p99_s"],
                          "goodput_rps": metrics["goodput_rps"], "error_rate": metrics["error_rate"],
                          "valid": metrics["valid"], "invalid_reason": metrics["invalid_reason"]})
            _check_server(target, [rnd])
            if metrics["valid"] is not False:
                return ok
        result["valid"] = False
        result["invalid_reason"] = f"capacity: the probe at {rate:g} req/s was invalid {INVALID_RETRIES + 1} times ({metrics['invalid_reason']})"
        return False

    def step() -> None:
        found.clear()
        result.pop("valid", None)
        result.pop("invalid_reason", None)
        best, tried = search_max_rate(probe, low, high, probes)
        failing = [rate for rate, ok in tried if not ok and (best is None or rate > best)]
        for seed in range(1, repeats + 1):  # both sides of the boundary again, on other schedules
            for rate in ([best] if best is not None else []) + ([min(failing)] if failing else []):
                probe(rate, seed)
        interval = capacity_interval(found)
        result["max_rate_meeting_slo_rps"] = interval[0]
        result["capacity_interval_rps"] = list(interval)

    def curve() -> list[dict[str, object]]:
        last = {float(p["rate_rps"]): p for p in found if p["valid"] is not False}  # type: ignore[arg-type]
        return [{"rate_rps": rate, "goodput_rps": p["goodput_rps"], "ttft_p99_from_schedule_s": p["ttft_p99_from_schedule_s"],
                 "meets_slo": p["meets_slo"]} for rate, p in sorted(last.items())]

    with sending:
        measure_case(
            case, Workload(step, items_per_round=1, inference=False, warmup=lambda: runner.run(target.requests[:2], LoadPoint("closed", concurrency=1))),
            {tier: Budget(rounds=1, warmup_rounds=1) for tier in BUDGETS}, facts=target.facts,
            extra={**_extra(case, target), "slo": slo.as_record()},
            derive=lambda info: {**result, "capacity_probes": list(found), "goodput_curve": curve()},
        )
