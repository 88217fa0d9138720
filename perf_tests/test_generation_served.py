"""Technique 6, served: text generation over an OpenAI-compatible HTTP API, under closed- and open-loop load.

The server hosts technique 6's saved model directory — ``transformers serve`` with and without
continuous batching, llama.cpp's server on a GGUF of the same weights when ``[llamacpp]`` is
installed, or the user's own fleet with ``--served-url openai+http://host:port/v1 --served-model
NAME``. One load generator (``inferperf.serving.loadgen``) sends each round's requests: closed
loop (N streams, each sending when its last request ends) or open loop (Poisson arrivals at R
requests/s on a seeded schedule, optionally capped in flight). A round is a bounded window;
items are output tokens. Latency is recorded from the send and from the scheduled time, and the
client checks itself: a round it could not schedule is marked invalid, never reported as the
server's latency. The ``capacity`` case of each server finds the highest Poisson rate whose p99 TTFT and
TPOT meet the SLO (MLPerf's Server question) by a bounded search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.metrics.requests import LoadPoint, RoundLoad
from inferperf.metrics.served import Slo, parse_slo, served_metrics, slo_met
from inferperf.params import parametrize_cases
from inferperf.serving.loadgen import round_requests, search_max_rate
from inferperf.serving.runners import expected_tokens_per_s
from inferperf.settings import Budget, Settings

if TYPE_CHECKING:
    from fixtures.served_generation import ServedTarget

TECHNIQUE = "generation"
MODEL: dict[Tier, str] = {"quick": "llama_tiny", "standard": "qwen2_0p5b"}
LENGTHS: dict[Tier, tuple[int, int]] = {"quick": (128, 32), "standard": (512, 128)}
#: the servers the suite starts: variant prefix -> (what starts it, extras it needs)
SERVERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tf": ("transformers serve", ("torch", "genserve")),
    "tfcb": ("transformers serve --continuous-batching", ("torch", "genserve")),
    "llamacpp": ("llama.cpp", ("torch", "llamacpp")),
}
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
#: capacity search: Poisson rates probed between these bounds, at most this many probes
CAPACITY: dict[Tier, tuple[float, float, int]] = {"quick": (1.0, 16.0, 4), "standard": (0.25, 16.0, 6)}
#: a case whose requests fail more often than this fails (after its record is written)
MAX_ERROR_RATE = 0.05
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=3, warmup_rounds=1), "standard": Budget(rounds=5, warmup_rounds=1)}


def _server_names(settings_url: bool) -> tuple[str, ...]:
    return ("url",) if settings_url else tuple(SERVERS)


def served_cases(tier: Tier, with_url: bool = False) -> list[Case]:
    """Each server's load points, then its capacity search: the cases of one server run together,
    so each server starts once a session (starting one costs 10-20 s on 2 cores)."""
    prompt_len, output_len = LENGTHS[tier]
    cases = []
    for server in _server_names(with_url):
        requires = SERVERS[server][1] if server in SERVERS else ("torch", "genserve")
        for load, point in [*LOADS[tier].items(), ("capacity", None)]:
            cases.append(Case(TECHNIQUE, MODEL[tier], f"served_{server}_{load}", "cpu", "fp32", point.concurrency or 1 if point else 1,
                              backend="openai", requires=requires, prompt_len=prompt_len, output_len=output_len))
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # with any --served-url the cases are the URL's (under a Triton URL they skip, saying why)
    with_url = bool(metafunc.config.getoption("--served-url"))
    if metafunc.function.__name__ == "test_generation_served":
        parametrize_cases(metafunc, lambda tier: served_cases(tier, with_url))


def _parts(case: Case) -> tuple[str, str]:
    """``served_tfcb_poisson_r4`` -> (``tfcb``, ``poisson_r4``)."""
    _, server, load = case.variant.split("_", 2)
    return server, load


def _slo(settings: Settings) -> Slo:
    return parse_slo(settings.slo) if settings.slo else DEFAULT_SLO[settings.tier]


def _extra(case: Case, target: ServedTarget) -> dict[str, object]:
    endpoint = target.endpoint
    return {
        "server": endpoint.server, "endpoint": endpoint.base_url, "served_model": endpoint.model,
        "agreement": target.agreement,
        "chunk_token_source": "client tokenizer (the served artefact's)" if target.count_tokens else "one per chunk; totals from usage",
    }


def _check_server(target: ServedTarget, rounds: list[RoundLoad]) -> None:
    """A server that died mid-run fails the case with its log's last lines."""
    if target.host is not None and not target.host.alive():
        failed = sum(not r.ok for rnd in rounds for r in rnd.requests)
        pytest.fail(target.host.failure(f"the server died during the load ({failed} requests failed)"), pytrace=False)


def test_generation_served(case: Case, settings: Settings, served_target, measure_case, benchmark) -> None:
    if _parts(case)[1] == "capacity":
        _served_capacity(case, settings, served_target, measure_case)
        return
    point = LOADS[settings.tier][_parts(case)[1]]
    target: ServedTarget = served_target(round_requests(point, WINDOW_S[settings.tier]))
    slo = _slo(settings)
    runner = target.runner(expected_tokens_per_s(point, case.output_len or 1))
    payloads = target.requests[: round_requests(point, WINDOW_S[settings.tier])]
    prompt_tokens = [r.prompt_tokens for r in payloads]
    rounds: list[RoundLoad] = []

    def step() -> None:
        rounds.append(runner.run(payloads, point, prompt_tokens))
        _check_server(target, rounds)

    def warmup() -> None:  # two requests one after the other: connections open, the server warm
        runner.run(payloads[:2], LoadPoint("closed", concurrency=1))
        _check_server(target, rounds)

    def derived(info) -> dict[str, object]:
        timed = int(info["rounds"])  # the step appends timed rounds only (the warm-up has its own function)
        metrics = served_metrics(rounds[:timed], point, slo)
        metrics["output_len_forced"] = all(r.length_forced for rnd in rounds[:timed] for r in rnd.requests if r.ok) and all(
            r.completion_tokens == case.output_len for rnd in rounds[:timed] for r in rnd.requests if r.ok
        )
        return metrics

    try:
        info = measure_case(
            case, Workload(step, items_per_round=len(payloads) * (case.output_len or 1), inference=False, warmup=warmup),
            BUDGETS, facts=target.facts, extra=_extra(case, target), derive=derived,
        )
    finally:
        runner.close()
    if target.agreement.get("compared_with_local"):
        assert target.agreement["served_equals_local"], f"served greedy tokens differ from local ones: {target.agreement}"
    error_rate = info.get("error_rate")
    if isinstance(error_rate, float) and error_rate > MAX_ERROR_RATE:
        pytest.fail(f"{case.case_id}: {error_rate:.0%} of requests failed (> {MAX_ERROR_RATE:.0%}): {info.get('errors')}", pytrace=False)


def _served_capacity(case: Case, settings: Settings, served_target, measure_case) -> None:
    """The highest Poisson rate whose p99 TTFT (from the schedule) and p99 TPOT meet the SLO, no more
    than ``MAX_ERROR_RATE`` of requests failing and the client keeping its schedule."""
    slo = _slo(settings)
    low, high, probes = CAPACITY[settings.tier]
    # enough prompts for the longest probe: the search's highest rate
    target: ServedTarget = served_target(round_requests(LoadPoint("poisson", rate_rps=high), WINDOW_S[settings.tier]))
    runner = target.runner(expected_tokens_per_s(LoadPoint("poisson", rate_rps=high), case.output_len or 1))
    found: list[dict[str, object]] = []

    def meets(rate: float) -> bool:
        point = LoadPoint("poisson", rate_rps=rate, seed=0)
        payloads = target.requests[: round_requests(point, WINDOW_S[settings.tier])]
        rnd = runner.run(payloads, point, [r.prompt_tokens for r in payloads])
        metrics = served_metrics([rnd], point, slo)
        ok = slo_met(metrics, slo, MAX_ERROR_RATE)
        found.append({"rate_rps": rate, "meets_slo": ok, "ttft_p99_from_schedule_s": metrics["ttft_p99_from_schedule_s"],
                      "tpot_p99_s": metrics["tpot_p99_s"], "error_rate": metrics["error_rate"], "valid": metrics["valid"],
                      "invalid_reason": metrics["invalid_reason"]})
        _check_server(target, [rnd])
        return ok

    result: dict[str, object] = {}

    def step() -> None:
        found.clear()
        best, _ = search_max_rate(meets, low, high, probes)
        result["max_rate_meeting_slo_rps"] = best

    try:
        measure_case(
            case, Workload(step, items_per_round=1, inference=False, warmup=lambda: runner.run(target.requests[:2], LoadPoint("closed", concurrency=1))),
            {tier: Budget(rounds=1, warmup_rounds=1) for tier in BUDGETS}, facts=target.facts,
            extra={**_extra(case, target), "slo": slo.as_record()},
            derive=lambda info: {**result, "capacity_probes": list(found)},
        )
    finally:
        runner.close()
