"""The documented keys of an inferperf record, and a validator for saved runs.

Every key listed here has a row in README.md's record table (a test checks that), with its unit
in its name: ``_s`` seconds, ``_bytes`` bytes, ``_per_s`` per second, ``_fraction`` 0..1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: keys every inferperf benchmark carries in ``extra_info``
EXTRA_INFO_KEYS: tuple[str, ...] = (
    "technique",
    "model",
    "variant",
    "device",
    "dtype",
    "batch",
    "backend",
    "case_id",
    "tier",
    "threads",
    "rounds",
    "warmup_rounds",
    "items_per_round",
    "items_per_s",
    "latency_per_item_s",
    "flops_per_item",
    "achieved_flops_per_s",
    "peak_flops_per_s",
    "roofline_fraction",
    "params",
    "model_bytes",
    "peak_mem_bytes",
    "setup_s",
)

#: keys some techniques add (documented in README with the technique that adds them)
OPTIONAL_EXTRA_INFO_KEYS: tuple[str, ...] = (
    "baseline_case_id",
    "weights",
    "checkpoint_build_s",
    # batching
    "stage_s",
    "dominant_stage",
    "images",
    "loader_workers",
    # preprocess
    "pipeline",
    "engine",
    "decode_device",
    "resize_device",
    "reader",
    "recipe",
    "dali_threads",
    "train_device",
    # ladder and pipeline
    "agreement",
    "warnings",
    "quantized_engine",
    "lite_of",
    "executorch_backend",
    "crops",
    "first_call_s",
    "image_size",
    # zoo
    "export_s",
    "framework",
    "protocol",
    "endpoint",
    "server",
    "clients",
    "requests_per_client",
    "dynamic_batching",
    "latency_p50_s",
    "latency_p90_s",
    "latency_p99_s",
    "request_latencies_s",
    "server_mean_batch",
)

#: keys that must hold a number (not None) whenever timing ran
MEASURED_KEYS: tuple[str, ...] = ("items_per_s", "latency_per_item_s")

MACHINE_KEYS: tuple[str, ...] = (
    "schema",
    "tier",
    "versions",
    "torch_build",
    "cpu",
    "gpus",
    "calibration",
    "skipped",
)


class RecordError(ValueError):
    """A saved run that cannot be used; the message names the file and the field."""


def load_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise RecordError(f"{path}: not pytest-benchmark output (no top-level 'benchmarks' list)")
    return data


def validate_inferperf_run(path: Path) -> list[str]:
    """Problems with ``path`` as an inferperf run (empty list: it carries every documented key)."""
    data = load_json(path)
    problems: list[str] = []
    machine = data.get("machine_info", {}).get("inferperf")
    if not isinstance(machine, dict):
        problems.append(f"{path}: machine_info.inferperf is missing (not written by the inferperf conftest?)")
    else:
        problems += [f"{path}: machine_info.inferperf.{k} is missing" for k in MACHINE_KEYS if k not in machine]
        if not machine.get("versions"):
            problems.append(f"{path}: machine_info.inferperf.versions is empty")
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        problems.append(f"{path}: 'benchmarks' is empty: nothing was measured")
        return problems
    for index, bench in enumerate(benchmarks):
        name = bench.get("fullname") or bench.get("name") or f"benchmarks[{index}]"
        info = bench.get("extra_info", {})
        for key in EXTRA_INFO_KEYS:
            if key not in info:
                problems.append(f"{path}: {name}: extra_info.{key} is missing")
        for key in sorted(set(info) - set(EXTRA_INFO_KEYS) - set(OPTIONAL_EXTRA_INFO_KEYS)):
            problems.append(f"{path}: {name}: extra_info.{key} is not documented (add it to inferperf/analysis/schema.py and README.md)")
        for key in MEASURED_KEYS:
            value = info.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                problems.append(f"{path}: {name}: extra_info.{key} is {value!r}, expected a positive number")
    return problems
