import time

import numpy as np
import pytest

from inferperf.cases import Case
from inferperf.hardware import (
    Calibration,
    calibrate,
    int8_shortfall_note,
    is_out_of_memory,
)
from inferperf.measure import (
    ModelFacts,
    StageClock,
    dominant_stage,
    drain,
    fill_extra_info,
    peak_memory_bytes,
)
from inferperf.settings import Budget


class FakeBenchmark:
    """Stands in for pytest-benchmark's fixture after a run whose median round took ``median`` s."""

    def __init__(self, median: float | None) -> None:
        self.extra_info: dict = {}

        class Inner:
            pass

        inner = Inner()
        inner.median = median
        self.stats = type("Meta", (), {"stats": inner})()


def test_extra_info_derives_throughput_flops_and_roofline():
    case = Case("batching", "m", "manual", batch=4)
    calibration = Calibration("cpu", {"fp32": 100e9})
    facts = ModelFacts(params=10, model_bytes=40, flops_per_item=2e9, setup_s=1.5)
    bench = FakeBenchmark(median=0.5)
    info = fill_extra_info(
        bench, case, 10, Budget(3, 1), facts=facts, calibration=calibration, peak_mem_bytes=123, tier="quick"
    )
    assert info["items_per_s"] == pytest.approx(20.0)
    assert info["latency_per_item_s"] == pytest.approx(0.05)
    assert info["achieved_flops_per_s"] == pytest.approx(40e9)
    assert info["roofline_fraction"] == pytest.approx(0.4)
    assert info["case_id"] == case.case_id and bench.extra_info == info


def test_extra_info_without_timing_has_no_made_up_numbers():
    info = fill_extra_info(
        FakeBenchmark(None), Case("t", "m", "v"), 1, Budget(1), facts=ModelFacts(), calibration=None,
        peak_mem_bytes=None, tier=None,
    )
    assert info["items_per_s"] is None and info["roofline_fraction"] is None


def test_calibration_judges_quantized_runs_against_int8_peak():
    calibration = Calibration("cpu", {"fp32": 1.0, "int8": 4.0, "bf16": 2.0})
    assert calibration.peak_for("int8dyn") == 4.0
    assert calibration.peak_for("bf16") == 2.0
    assert calibration.peak_for("fp16") is None


def test_int8_below_bf16_on_a_gpu_says_why_the_peak_is_low():
    # the H100 figures of the GPU issue: 127 TOP/s int8 against 767 TFLOP/s bf16
    note = int8_shortfall_note({"bf16": 767e12, "int8": 127e12}, "column-major", "cuda")
    assert note and "127 TOP/s" in note and "no int8 tensor-core kernel" in note
    assert int8_shortfall_note({"bf16": 767e12, "int8": 1500e12}, "column-major", "cuda") is None
    assert int8_shortfall_note({"bf16": 1e12, "int8": 0.1e12}, "row-major", "cpu") is None


def test_cpu_calibration_measures_int8_or_says_why_not():
    pytest.importorskip("torch")
    calibration = calibrate("cpu", matmul_n=256, repeats=2)
    assert calibration.peak_flops_per_s["fp32"] > 0
    assert "int8" in calibration.peak_flops_per_s or any(n.startswith("int8") for n in calibration.notes)


def test_stage_clock_and_drain_count_every_item_once():
    clock = StageClock()
    batches = [np.zeros(3), np.zeros(3), np.zeros(2)]
    consumed = []
    items = drain(lambda: iter(batches), lambda b: (time.sleep(0.01), consumed.append(len(b))), clock)
    clock.end_round()
    assert items == 8 and consumed == [3, 3, 2]
    stages = clock.median_seconds()
    assert set(stages) == {"data", "model"} and stages["model"] >= 0.03
    assert dominant_stage(stages) == "model"


def test_peak_memory_sees_an_allocation_inside_the_call():
    size = 64 * 2**20

    def allocate() -> None:
        block = np.ones(size, dtype=np.uint8)  # touched, so resident
        assert block.sum() == size

    peak = peak_memory_bytes(allocate, "cpu")
    assert peak is not None and peak >= 0.8 * size


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


class RecordingBenchmark(FakeBenchmark):
    """Runs ``pedantic`` for real and remembers how many rounds it was asked for."""

    def pedantic(self, target, rounds, warmup_rounds, iterations):
        self.asked_rounds = rounds
        durations = []
        for _ in range(rounds):
            started = time.perf_counter()
            target()
            durations.append(time.perf_counter() - started)
        self.stats.stats.median = float(np.median(durations))


def test_a_slow_step_runs_fewer_rounds_under_the_time_cap_and_the_record_says_so():
    from inferperf.measure import Workload, measure

    bench = RecordingBenchmark(None)
    slow = Workload(step=lambda: time.sleep(0.05), items_per_round=1, inference=False)
    info = measure(bench, Case("t", "m", "v"), slow, Budget(20, 1, max_time_s=0.2, min_rounds=2))
    assert bench.asked_rounds == info["rounds"]
    assert 2 <= info["rounds"] <= 4  # 0.2 s / 0.05 s per round, with the warm-up's own jitter
