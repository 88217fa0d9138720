"""Root conftest: inferperf's options, the machine_info/JSON hooks, and the fixture plugins.

Fixtures live in ``fixtures/`` and are loaded as plugins; benchmarks live in ``perf_tests/``;
tests of the tooling in ``tests/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from inferperf.cases import TIERS, Case
from inferperf.hardware import is_out_of_memory, release_memory
from inferperf.record import SESSION_KEY, SessionRecord, jsonable_params, machine_record, record_of
from inferperf.settings import Settings, parse_devices, parse_tier

pytest_plugins = [
    "fixtures.session",
    "fixtures.corpus",
    "fixtures.models",
    "fixtures.serving",
    "fixtures.zoo",
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
        help="benchmark an existing KServe-v2 server instead of starting Triton: grpc://host:port and/or http://host:port",
    )
    group.addoption("--rounds", type=int, default=None, help="timed rounds per benchmark (overrides the tier)")
    group.addoption(
        "--warmup-rounds", type=int, default=None, help="untimed warm-up rounds per benchmark (overrides the tier)"
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
    served_url = config.getoption("--served-url")
    if served_url:
        from inferperf.serving.server import parse_served_url

        try:
            parse_served_url(served_url)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    return Settings(
        tier=tier,
        served_url=served_url,
        devices=devices,
        threads=threads,
        weights_dir=weights.resolve() if weights else None,
        rounds=config.getoption("--rounds"),
        warmup_rounds=config.getoption("--warmup-rounds"),
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


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("case") if callspec is not None else None
    return value if isinstance(value, Case) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--device cpu`` deselects the CUDA cases (and vice versa) instead of skipping them."""
    wanted = record_of(config).settings.devices
    keep, drop = [], []
    for item in items:
        case = _case_of(item)
        (drop if case is not None and case.device not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _out_of_memory_as_skip(item: pytest.Item):
    """Setup and call of a case: an out-of-memory error becomes a skip with the reason."""
    try:
        return (yield)
    except Exception as exc:
        case = _case_of(item)
        if case is None or not is_out_of_memory(exc):
            raise
        release_memory()
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        pytest.skip(f"out of memory at batch {case.batch} on {case.device}: {first_line}")


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(_out_of_memory_as_skip)
pytest_runtest_call = pytest_runtest_setup


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    case = _case_of(item)
    if case is not None and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record_of(item.config).note_skip(case, reason.removeprefix("Skipped: "))
    return report


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["inferperf"] = machine_record(record_of(config))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    for bench in output_json.get("benchmarks", []):
        bench["params"] = jsonable_params(bench.get("params"))
