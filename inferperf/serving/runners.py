"""What sends a served case's rounds: one client process, worker processes, or Ray actors — and how
many, from the load's expected token rate and what ``inferperf client-ceiling`` measured here."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from inferperf.metrics.requests import LoadPoint
from inferperf.serving.loadgen import DEFAULT_TIMEOUT_S, LoadClient, LoadRunner
from inferperf.serving.workers import WorkerPool


def ceiling_cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inferperf" / "client-ceiling.json"


def cached_ceiling() -> dict[str, object] | None:
    """The last ``inferperf client-ceiling`` of this machine (recorded in every run's machine info), or None."""
    path = ceiling_cache_path()
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("node") == os.uname().nodename else None


#: a stream's token rate assumed when nothing better is known (a server streaming a token each 10 ms)
STREAM_TOKENS_PER_S = 100.0
#: one client core's ceiling assumed where ``inferperf client-ceiling`` never ran (Zen 3 measured ~50-65k)
DEFAULT_CORE_TOKENS_PER_S = 50_000.0
#: a worker is given at most this share of its core's ceiling: the self-check's bound loosens near it
CORE_SHARE = 0.5


def expected_tokens_per_s(point: LoadPoint, output_tokens: int) -> float:
    """The token rate a load point will stream: the rate times the output (open loop), or each stream
    at ``STREAM_TOKENS_PER_S``."""
    if point.open_loop:
        return (point.rate_rps or 0.0) * output_tokens
    return (point.concurrency or 1) * STREAM_TOKENS_PER_S


def auto_workers(tokens_per_s: float) -> int:
    """Client processes for ``tokens_per_s``: one while it fits in half a core's measured ceiling, more
    where it does not, at most one per core left beside the first."""
    measured = cached_ceiling()
    found = (measured or {}).get("per_core_tokens_per_s")
    per_core = float(found) if isinstance(found, (int, float)) and found > 0 else DEFAULT_CORE_TOKENS_PER_S
    needed = math.ceil(tokens_per_s / (CORE_SHARE * per_core)) if tokens_per_s > 0 else 1
    return max(1, min(needed, (os.cpu_count() or 2) - 1))


def runner_for(client: LoadClient, *, workers: int | None, ray_address: str | None, tokens_per_s: float,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """What sends the rounds: one process (``LoadRunner``), local worker processes, or Ray actors."""
    count = workers if workers is not None else auto_workers(tokens_per_s)
    if ray_address is not None:
        from inferperf.serving.ray_workers import RayPool

        return RayPool(client, count, address=None if ray_address == "local" else ray_address, timeout_s=timeout_s)
    if count > 1:
        return WorkerPool(client, count, timeout_s=timeout_s)
    return LoadRunner(client, timeout_s=timeout_s)
