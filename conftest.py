"""Root conftest: inferperf's options, the machine_info/JSON hooks, and the fixture plugins.

Fixtures live in ``fixtures/`` and are loaded as plugins; benchmarks live in ``perf_tests/``;
tests of the tooling in ``tests/``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from inferperf.cases import TIERS
from inferperf.hardware import is_out_of_memory, release_memory
from inferperf.params import case_of
from inferperf.session import (
    SESSION_KEY,
    SessionRecord,
    jsonable_params,
    machine_record,
    record_of,
)
from inferperf.settings import Settings, parse_devices, parse_tier
from inferperf.text import error_line

pytest_plugins = [
    "fixtures.durability",
    "fixtures.session",
    "fixtures.corpus",
    "fixtures.models",
    "fixtures.serving",
    "fixtures.zoo",
    "fixtures.generation",
    "fixtures.served_generation",
]

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inferperf", "inferperf benchmark options")
    group.addoption(
        "--device",
        default="all",
        help="devices to benchmark: cpu, cuda, all (default: all; absent devices are skipped with the reason)",
    )
    group.addoption(
        "--tier",
        default="quick",
        help=f"benchmark sizes: {' | '.join(TIERS)} (default quick: small configs, ~10 min on 2 CPU cores; "
        "standard: the sizes of the original experiments)",
    )
    group.addoption("--threads", type=int, default=None, help="intra-op threads for torch/TF/ORT (recorded)")
    group.addoption(
        "--weights",
        type=Path,
        default=None,
        help="directory of real checkpoints: DIR/<model_key>/ is loaded instead of random weights",
    )
    group.addoption(
        "--served-url",
        default=None,
        help="benchmark an existing server instead of starting one: a KServe-v2 server (Triton) as grpc://host:port "
        "and/or http://host:port, or an OpenAI-compatible one (vLLM, SGLang, TGI, llama.cpp) as openai+http://host:port/v1",
    )
    group.addoption("--served-model", default=None, metavar="NAME", help="with an openai+http --served-url: the model name its server serves")
    group.addoption(
        "--slo", default=None, metavar="BOUNDS",
        help="served generation: the latency bounds a good request meets, e.g. ttft=0.5,tpot=0.05,e2e=5 (seconds; "
        "goodput counts the requests within all of them; default per tier)",
    )
    group.addoption(
        "--client-workers", default="auto", metavar="N",
        help="served load: client processes that split each round's schedule (default auto: one, more where the load's "
        "expected token rate needs more than half of one client core's ceiling)",
    )
    group.addoption(
        "--ray-address", default=None, metavar="ADDRESS",
        help="served load: run the client workers as Ray actors on the cluster at ADDRESS ('local': a local Ray instance; "
        "the [ray] extra)",
    )
    group.addoption(
        "--load", action="append", default=None, metavar="SPEC",
        help="served generation: the load points, each one case (repeatable), e.g. closed:1,4,16  poisson:10,20:cap=8  "
        "gamma:10:burstiness=0.5  sessions:4  trace:speed=2  sweep:points=4 (default: the tier's; docs/running.md)",
    )
    group.addoption(
        "--traffic", default=None, metavar="SPEC",
        help="served generation: what the requests say, e.g. random:in=normal(512,128,64,1024):out=128, "
        "random:in=128:prefixes=4:prefix_len=512, multiturn:turns=4:think=0.5, jsonl:FILE, sharegpt:FILE, trace:FILE",
    )
    group.addoption("--tokenizer", type=Path, default=None, metavar="DIR",
                    help="served generation: a local tokenizer directory whose tokens the prompt lengths are in (never downloaded)")
    group.addoption("--served-api", default="completions", metavar="API",
                    help="served generation: completions, chat, or completions,chat (/v1/completions, /v1/chat/completions)")
    group.addoption("--server-metrics-period", type=float, default=None, metavar="S",
                    help="served generation: seconds between samples of the server's /metrics inside a round (default 1; "
                    "0: only before and after each round — a sample costs the server its page's rendering)")
    group.addoption("--served-requests", type=Path, default=None, metavar="DIR",
                    help="served generation: write every timed request's record (its stamps, token times, latencies, "
                    "tokens, error), one JSON line each, to DIR/<technique>/<case>.jsonl")
    group.addoption("--vllm-python", type=Path, default=None, metavar="PATH",
                    help="the python of vLLM's own environment (default: $INFERPERF_VLLM_PYTHON, else .venv-vllm/bin/python; "
                    "scripts/make-vllm-env makes it)")
    group.addoption("--rounds", type=int, default=None, help="timed rounds per benchmark (overrides the tier)")
    group.addoption(
        "--warmup-rounds", type=int, default=None, help="untimed warm-up rounds per benchmark (overrides the tier)"
    )
    group.addoption(
        "--price-per-hour",
        type=float,
        default=None,
        metavar="USD",
        help="what this machine costs per hour: adds cost_per_million_items_usd to every case",
    )
    group.addoption(
        "--isolate",
        action="store_true",
        help="run every case in a fresh child process: a crash, an odd exit or --case-timeout fails that case only",
    )
    group.addoption(
        "--case-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --isolate: stop a case's child process after SECONDS (set-up included) and fail the case",
    )
    group.addoption(
        "--journal",
        type=Path,
        default=None,
        metavar="PATH",
        help="append each finished case to PATH (default: beside --benchmark-json, as <json>.journal)",
    )
    group.addoption(
        "--keep-journal", action="store_true", help="keep the journal after the JSON was written (default: remove it)"
    )


def _settings(config: pytest.Config) -> Settings:
    try:
        devices = parse_devices(config.getoption("--device"))
        tier = parse_tier(config.getoption("--tier"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    threads = config.getoption("--threads")
    if threads is not None and threads < 1:
        raise pytest.UsageError(f"--threads: expected a positive integer, got {threads}")
    weights = config.getoption("--weights")
    if weights is not None and not weights.is_dir():
        raise pytest.UsageError(f"--weights: {weights} is not a directory")
    for option in ("--rounds", "--warmup-rounds"):
        value = config.getoption(option)
        if value is not None and value < (1 if option == "--rounds" else 0):
            raise pytest.UsageError(f"{option}: out of range, got {value}")
    timeout = config.getoption("--case-timeout")
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise pytest.UsageError(f"--case-timeout: expected seconds > 0, got {timeout}")
    if timeout is not None and not config.getoption("--isolate"):
        raise pytest.UsageError("--case-timeout needs --isolate: only a case in its own process can be stopped")
    price = config.getoption("--price-per-hour")
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise pytest.UsageError(f"--price-per-hour: expected a price in USD >= 0, got {price}")
    served_url = config.getoption("--served-url")
    served_model = config.getoption("--served-model")
    slo = config.getoption("--slo")
    served = None
    workers_option = config.getoption("--client-workers")
    if workers_option != "auto" and not (str(workers_option).isdigit() and int(workers_option) >= 1):
        raise pytest.UsageError(f"--client-workers: expected a number of processes >= 1 or auto, got {workers_option!r}")
    try:
        if served_url:
            from inferperf.serving.endpoints import parse_served_url

            served = parse_served_url(served_url, served_model)
        elif served_model:
            raise ValueError("--served-model: only with an OpenAI-compatible --served-url openai+http://host:port/v1")
        if slo is not None:
            from inferperf.metrics.served import parse_slo

            parse_slo(slo)
        loads = tuple(config.getoption("--load") or ())
        traffic = config.getoption("--traffic")
        apis = tuple(a.strip() for a in str(config.getoption("--served-api")).split(","))
        if not apis or any(a not in ("completions", "chat") for a in apis):
            raise ValueError(f"--served-api: expected completions, chat or completions,chat, got {config.getoption('--served-api')!r}")
        if loads:
            from inferperf.serving.loadspec import parse_loads

            parse_loads(list(loads))
        if traffic is not None:
            from inferperf.serving.traffic import parse_traffic

            parse_traffic(traffic)
        tokenizer = config.getoption("--tokenizer")
        if tokenizer is not None and not tokenizer.is_dir():
            raise ValueError(f"--tokenizer {tokenizer}: no such directory")
        vllm_python = config.getoption("--vllm-python")
        if vllm_python is not None and not vllm_python.is_file():
            raise ValueError(f"--vllm-python {vllm_python}: no such file")
        metrics_period = config.getoption("--server-metrics-period")
        if metrics_period is not None and not (math.isfinite(metrics_period) and metrics_period >= 0):
            raise ValueError(f"--server-metrics-period: expected seconds >= 0, got {metrics_period}")
        served_requests = config.getoption("--served-requests")
        if served_requests is not None and served_requests.exists() and not served_requests.is_dir():
            raise ValueError(f"--served-requests {served_requests}: not a directory")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return Settings(
        tier=tier,
        served_url=served_url,
        served_model=served_model,
        served=served,
        client_workers=None if workers_option == "auto" else int(workers_option),
        ray_address=config.getoption("--ray-address"),
        slo=slo,
        loads=loads,
        traffic=traffic,
        tokenizer_dir=tokenizer.resolve() if tokenizer else None,
        served_apis=apis,
        vllm_python=vllm_python.absolute() if vllm_python else None,
        devices=devices,
        threads=threads,
        weights_dir=weights.resolve() if weights else None,
        rounds=config.getoption("--rounds"),
        warmup_rounds=config.getoption("--warmup-rounds"),
        price_per_hour=price,
        served_requests_dir=served_requests.absolute() if served_requests else None,
        server_metrics_period_s=metrics_period,
    )


def pytest_configure(config: pytest.Config) -> None:
    settings = _settings(config)
    config.stash[SESSION_KEY] = SessionRecord(settings)
    if settings.threads is not None:
        # before torch/TF/ORT create their pools; torch is also told directly (fixtures.session)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            os.environ[var] = str(settings.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--device cpu`` deselects the CUDA cases (and vice versa) instead of skipping them."""
    wanted = record_of(config).settings.devices
    keep, drop = [], []
    for item in items:
        case = case_of(item)
        (drop if case is not None and case.device not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _out_of_memory_as_skip(item: pytest.Item):
    """Setup and call of a case: an out-of-memory error becomes a skip with the reason."""
    try:
        return (yield)
    except Exception as exc:
        case = case_of(item)
        if case is None or not is_out_of_memory(exc):
            raise
        release_memory()
        pytest.skip(f"out of memory at batch {case.batch} on {case.device}: {error_line(exc)}")


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(_out_of_memory_as_skip)
pytest_runtest_call = pytest_runtest_setup


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    case = case_of(item)
    if case is not None and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record_of(item.config).note_skip(case.case_id, reason.removeprefix("Skipped: "))
    return report


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["inferperf"] = machine_record(record_of(config))


#: pytest-benchmark's own machine_info keys that describe the machine (not its momentary state)
_STABLE_MACHINE_KEYS = ("node", "machine", "system", "release", "python_implementation", "python_version")


def _comparable_machine(machine_info: dict[str, Any]) -> dict[str, Any]:
    """What identifies a machine, without calibration noise or the CPU's momentary clock."""
    from inferperf.record.fingerprint import machine_identity

    stable = {k: machine_info.get(k) for k in _STABLE_MACHINE_KEYS}
    return {**stable, "fingerprint": machine_identity(machine_info).as_dict()}


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_compare_machine_info(
    config: pytest.Config, benchmarksession: Any, machine_info: dict[str, Any], compared_benchmark: dict[str, Any]
) -> Any:
    """``--benchmark-compare`` warns only when the machine differs, and says how.

    pytest-benchmark compares whole ``machine_info`` dicts, so the calibration measured each session
    (and the CPU's current clock) made it warn on every comparison with the same machine. During its
    check both sides are reduced to what identifies a machine; a real difference is named here.
    """
    from inferperf.record.fingerprint import machine_identity

    saved = compared_benchmark.get("machine_info")
    if not isinstance(saved, dict):
        return (yield)
    ours, theirs = dict(machine_info), dict(saved)
    differences = machine_identity(theirs).differences(machine_identity(ours))
    if differences:
        benchmarksession.logger.warning(f"Benchmark machine differs from the saved run's: {'; '.join(differences)}")
    machine_info.clear()
    machine_info.update(_comparable_machine(ours))
    saved.clear()
    saved.update(_comparable_machine(theirs))
    try:
        return (yield)
    finally:
        machine_info.clear()
        machine_info.update(ours)
        saved.clear()
        saved.update(theirs)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    for bench in output_json.get("benchmarks", []):
        bench["params"] = jsonable_params(bench.get("params"))
