"""Timed callables, throughput/latency, FLOPs and peak memory: the one way every benchmark measures.

A benchmark hands over a ``Workload`` (one round of work, ending on the device) and the
``ModelFacts`` it knows (parameters, bytes, FLOPs, set-up time); ``measure`` warms up, probes
peak memory outside the timed rounds, runs ``benchmark.pedantic`` with explicit rounds and fills
``extra_info`` with the documented keys.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from inferperf import contention, energy
from inferperf.cases import Case, Device
from inferperf.hardware import Calibration, sync
from inferperf.record.keys import EXTRA_INFO_KEYS, key_problems
from inferperf.settings import Budget

Step = Callable[[], object]


@dataclass(frozen=True)
class Workload:
    """One timed round: ``step`` processes ``items_per_round`` items (images, crops, requests)."""

    step: Step
    items_per_round: int
    #: run the step under ``torch.inference_mode`` (off for training steps)
    inference: bool = True
    #: what a warm-up round runs (default: ``step``); e.g. one batch when a round is minutes long.
    #: The last warm-up round is also the peak-memory probe.
    warmup: Step | None = None

    def __post_init__(self) -> None:
        if self.items_per_round < 1:
            raise ValueError(f"items_per_round must be >= 1, got {self.items_per_round}")


@dataclass(frozen=True)
class ModelFacts:
    """What is known about the model and its preparation, measured outside the timed loop."""

    params: int | None = None
    model_bytes: int | None = None
    flops_per_item: float | None = None
    setup_s: float | None = None


@dataclass
class StageClock:
    """Accumulates wall time per named stage inside a step, to say which stage dominates.

    The clock reads ``perf_counter`` around stages (~100 ns each), negligible against the
    millisecond stages it times. ``per_round`` holds one dict per completed round.
    """

    device: Device = "cpu"
    current: dict[str, float] = field(default_factory=dict)
    per_round: list[dict[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - start

    def end_round(self) -> None:
        self.per_round.append(self.current)
        self.current = {}

    def reset(self) -> None:
        self.current = {}
        self.per_round = []

    def median_seconds(self) -> dict[str, float]:
        """Median time per stage over the recorded rounds."""
        import statistics

        names = sorted({name for rnd in self.per_round for name in rnd})
        return {n: statistics.median(r.get(n, 0.0) for r in self.per_round) for n in names}


def drain(
    batches: Callable[[], Iterator[Any]],
    consume: Callable[[Any], object],
    clock: StageClock,
    *,
    data_stage: str = "data",
    compute_stage: str = "model",
    count: Callable[[Any], int] = len,
) -> int:
    """One pass: pull every batch (timed as ``data_stage``) and consume it (``compute_stage``).

    Returns how many items went through (``count(batch)`` summed), so a benchmark can check no
    item was lost or doubled.
    """
    items = 0
    iterator = batches()
    while True:
        with clock.stage(data_stage):
            batch = next(iterator, None)
        if batch is None:
            return items
        with clock.stage(compute_stage):
            consume(batch)
        items += count(batch)


def dominant_stage(stage_s: Mapping[str, float]) -> str | None:
    return max(stage_s, key=lambda k: stage_s[k]) if stage_s else None


# --------------------------------------------------------------------------------------------
# Peak memory


def _read_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class _RssSampler:
    """Fallback where the high-water mark cannot be reset: sample RSS every millisecond."""

    def __init__(self) -> None:
        self.peak_kib = _read_status_kib("VmRSS") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak_kib = max(self.peak_kib, _read_status_kib("VmRSS") or 0)

    def __enter__(self) -> "_RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, _read_status_kib("VmRSS") or 0)


def _release_free_heap() -> None:
    """Return freed heap to the OS so the baseline RSS counts live memory only.

    Without it, memory freed by an earlier case stays resident in glibc's arenas and the next
    case's allocations reuse it without growing RSS: its peak would read near zero.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the baseline may include free heap


def peak_memory_bytes(call: Step, device: Device) -> int | None:
    """Peak memory in use during one ``call``, above what was in use just before it.

    CUDA: ``torch.cuda.max_memory_allocated`` (the caching allocator's view). CPU: the growth of
    this process's resident set (``VmHWM`` after resetting it); memory of worker processes
    (DataLoader workers, a served model's host) is not included.
    """
    if device == "cuda":
        import torch

        sync(device)
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        sync(device)
        return int(torch.cuda.max_memory_allocated() - baseline)
    _release_free_heap()
    baseline_kib = _read_status_kib("VmRSS")
    if baseline_kib is None:
        return None
    if _reset_peak_rss():
        call()
        peak_kib = _read_status_kib("VmHWM") or baseline_kib
    else:
        with _RssSampler() as sampler:
            call()
        peak_kib = sampler.peak_kib
    return max(0, peak_kib - baseline_kib) * 1024


# --------------------------------------------------------------------------------------------
# FLOPs


def count_flops(call: Step) -> int:
    """FLOPs of one call as ``torch.utils.flop_counter`` counts them (matmul/conv/attention).

    Ops it has no formula for (quantized kernels, for one) count zero, so variants are given
    the FLOPs of their fp32 reference: the arithmetic they approximate is the same.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------------------------
# The measurement


def _prepared(workload: Workload, device: Device, step: Step | None = None) -> Step:
    step = step or workload.step
    if workload.inference:
        import torch

        def inference_step() -> object:
            with torch.inference_mode():
                result = step()
            sync(device)
            return result

        return inference_step

    def synced_step() -> object:
        result = step()
        sync(device)
        return result

    return synced_step


def current_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def measure(
    benchmark: Any,
    case: Case,
    workload: Workload,
    budget: Budget,
    *,
    facts: ModelFacts = ModelFacts(),
    calibration: Calibration | None = None,
    extra: Mapping[str, object] | None = None,
    tier: str | None = None,
    stages: StageClock | None = None,
    price_per_hour: float | None = None,
    derive: Callable[[Mapping[str, object]], Mapping[str, object]] | None = None,
) -> dict[str, object]:
    """Warm up, probe peak memory, time ``budget.rounds`` rounds, and fill ``extra_info``.

    ``derive``: keys computed from what the rounds themselves recorded (generation's per-token
    timestamps), called with the filled record (``rounds``, ``warmup_rounds`` say which of the step's
    calls were timed); its keys are checked against the registry with the rest.

    ``stages``: the clock the step times its stages with; its warm-up rounds are discarded and
    the timed rounds' medians go into ``stage_s`` with the ``dominant_stage``.
    Returns the ``extra_info`` dict (also stored on ``benchmark.extra_info``).
    """
    timed = _prepared(workload, case.device)
    warm = _prepared(workload, case.device, workload.warmup) if workload.warmup is not None else None
    if stages is not None:
        unclocked = timed

        def timed() -> object:  # type: ignore[no-redef]
            result = unclocked()
            stages.end_round()
            return result

    warm = warm or timed
    before = contention.snapshot()
    peak_mem: int | None = None
    last_warmup_s: float | None = None
    for index in range(budget.warmup_rounds):
        if index == budget.warmup_rounds - 1:
            # the last warm-up round doubles as the memory probe and as the estimate of a round's
            # time for the budget's time cap: steady state, never timed
            # timed around the step alone: the probe's own heap trimming (a garbage collection and
            # malloc_trim, up to ~0.5 s in a large process) is not a round and must not cut the rounds
            round_s: list[float] = []

            def probed(step: Step = warm) -> object:
                started = time.perf_counter()
                try:
                    return step()
                finally:
                    round_s.append(time.perf_counter() - started)

            peak_mem = peak_memory_bytes(probed, case.device)
            last_warmup_s = round_s[-1] if round_s else None
        else:
            warm()
    budget = replace(budget, rounds=budget.rounds_for(last_warmup_s))
    if stages is not None:
        stages.reset()
    # pytest-benchmark's tables group by technique, so a 400 ns null case is not set beside CLIP
    benchmark.group = case.technique
    events = CudaRoundEvents() if case.device == "cuda" else None
    meter = energy.meter_for(case.device)
    joules_before, wall_before = meter.read_j(), time.perf_counter()
    benchmark.pedantic(events.wrap(timed) if events else timed, rounds=budget.rounds, warmup_rounds=0, iterations=1)
    joules = meter.between(joules_before, meter.read_j())
    wall_s = time.perf_counter() - wall_before
    during = contention.contention_between(before, contention.snapshot())
    device_times = device_time_record(events, warm, benchmark) if events else {}
    stage_s = stages.median_seconds() if stages is not None else None
    if budget.warmup_rounds == 0:
        # cold timings were asked for: probe memory after them rather than before
        peak_mem = peak_memory_bytes(warm, case.device)

    info = fill_extra_info(
        benchmark,
        case,
        workload.items_per_round,
        budget,
        facts=facts,
        calibration=calibration,
        peak_mem_bytes=peak_mem,
        tier=tier,
    )
    items = budget.rounds * workload.items_per_round
    more: dict[str, object] = {
        "contention": during,
        "energy_per_item_j": joules / items if joules is not None else None,
        "mean_power_w": joules / wall_s if joules is not None and wall_s > 0 else None,
        **device_times,
        **(extra or {}),
    }
    latency = info.get("latency_per_item_s")
    if price_per_hour is not None and isinstance(latency, float):
        more["cost_per_million_items_usd"] = price_per_hour / 3600.0 * latency * 1e6
    if stage_s is not None:
        more["stage_s"] = stage_s
        more["dominant_stage"] = dominant_stage(stage_s)
    info.update(more)
    if derive is not None:
        derived = dict(derive(info))
        more.update(derived)
        info.update(derived)
    # the record is written against the registry the readers check: a key it does not document,
    # or a value of the wrong type, is a bug here, not something for `inferperf validate` to find later
    problems = key_problems(EXTRA_INFO_KEYS, info, "extra_info", require=True)
    if problems:
        raise ValueError(f"{case.case_id}: the record breaks inferperf/record/keys.py: {'; '.join(problems)}")
    benchmark.extra_info.update(more)
    return info


# --------------------------------------------------------------------------------------------
# Device time (CUDA)


class CudaRoundEvents:
    """CUDA events recorded at each timed round's start and end (a few microseconds each)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []

    def wrap(self, step: Step) -> Step:
        import torch

        def timed() -> object:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            result = step()
            end.record()
            self.pairs.append((start, end))
            return result

        return timed

    def median_s(self) -> float | None:
        import statistics

        import torch

        if not self.pairs:
            return None
        torch.cuda.synchronize()
        return statistics.median(start.elapsed_time(end) / 1e3 for start, end in self.pairs)


def gpu_busy_seconds(step: Step) -> float | None:
    """Kernel time of one round on the GPU (CUPTI through torch.profiler): busy time, idle gaps excluded.

    Events around a round span its gaps too (the GPU waiting for launches), so they cannot show a
    launch-bound case; the kernels' own durations can. One extra round, after the timed ones.
    """
    try:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
        kernels_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
    except Exception:  # noqa: BLE001 - no CUPTI in this build or driver: the record says null
        return None
    return kernels_us / 1e6


def device_time_record(events: CudaRoundEvents, step: Step, benchmark: Any) -> dict[str, object]:
    """``device_s``, ``device_busy_s`` and ``host_overhead_fraction`` of a CUDA case."""
    span = events.median_s()
    busy = gpu_busy_seconds(step)
    wall = median_round_seconds(benchmark)
    overhead = min(1.0, max(0.0, 1.0 - busy / wall)) if busy is not None and wall else None
    return {"device_s": span, "device_busy_s": busy, "host_overhead_fraction": overhead}


def median_round_seconds(benchmark: Any) -> float | None:
    """Median of the timed rounds, or None when timing was disabled (``--benchmark-disable``)."""
    stats = getattr(benchmark, "stats", None)
    inner = getattr(stats, "stats", None)
    median = getattr(inner, "median", None)
    return float(median) if median else None


def fill_extra_info(
    benchmark: Any,
    case: Case,
    items_per_round: int,
    budget: Budget,
    *,
    facts: ModelFacts,
    calibration: Calibration | None,
    peak_mem_bytes: int | None,
    tier: str | None,
) -> dict[str, object]:
    median_s = median_round_seconds(benchmark)
    items_per_s = items_per_round / median_s if median_s else None
    achieved = (
        facts.flops_per_item * items_per_s if facts.flops_per_item and items_per_s else None
    )
    peak = calibration.peak_for(case.dtype) if calibration is not None else None
    info: dict[str, object] = {
        **case.record(),
        "tier": tier,
        "threads": current_threads(),
        "rounds": budget.rounds,
        "warmup_rounds": budget.warmup_rounds,
        "items_per_round": items_per_round,
        "items_per_s": items_per_s,
        "latency_per_item_s": median_s / items_per_round if median_s else None,
        "flops_per_item": facts.flops_per_item,
        "achieved_flops_per_s": achieved,
        "peak_flops_per_s": peak,
        "roofline_fraction": achieved / peak if achieved and peak else None,
        "params": facts.params,
        "model_bytes": facts.model_bytes,
        "peak_mem_bytes": peak_mem_bytes,
        "setup_s": facts.setup_s,
    }
    benchmark.extra_info.update(info)
    return info
