"""The detection-power experiment, on a simulated machine with known noise (deterministic)."""

import numpy as np

from inferperf.analysis.detection import (
    BASE_UNITS,
    Trial,
    detection_rows,
    noise_floor,
    render_report,
    render_rows,
    run_trials,
)
from inferperf.cli import main


def simulated(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)

    def measure(units: int, rounds: int) -> list[float]:
        return list(units * 1e-4 * (1 + noise * rng.standard_normal(rounds)))

    return measure


def test_quiet_machine_detects_large_slowdowns_without_false_alarms():
    trials = run_trials(simulated(0.005), rounds_options=[20], slowdowns=[0.0, 0.01, 0.10], trials=30)
    rows = detection_rows(trials, min_change=0.03, alpha=0.01)
    rates = {r.slowdown: r.rate for r in rows}
    assert rates[0.0] == 0.0  # A/A never flagged
    assert rates[0.10] == 1.0  # 10% always caught
    assert rates[0.01] == 0.0  # 1% is below the minimum effect


def test_too_few_rounds_cannot_detect_anything():
    trials = run_trials(simulated(0.005), rounds_options=[3], slowdowns=[0.10], trials=10)
    rows = detection_rows(trials, min_change=0.03, alpha=0.01)
    assert rows[0].rate == 0.0  # 3 vs 3 rounds cannot reach p < 0.01


def test_rendered_table_has_one_row_per_rounds_option():
    trials = run_trials(simulated(0.01), rounds_options=[5, 10], slowdowns=[0.0, 0.05], trials=3)
    rows = detection_rows(trials, min_change=0.03, alpha=0.01)
    text = render_rows(rows, 0.03, 0.01)
    assert "| rounds | false alarms (A/A) | 5% detected |" in text
    assert text.count("\n| 5 |") == 1 and text.count("\n| 10 |") == 1


def test_command_runs_on_this_machine(tmp_path, capsys):
    out = tmp_path / "power.md"
    assert main(["detection-power", "--trials", "2", "--rounds", "5", "--slowdowns", "0,0.5", "--markdown", str(out)]) == 0
    assert "50% detected" in out.read_text()
    assert main(["detection-power", "--rounds", "1"]) == 2


def test_base_units_make_one_percent_exact():
    assert int(round(BASE_UNITS * 1.01)) - BASE_UNITS == 1


def drifting(drift: float, noise: float = 0.002, seed: int = 0):
    """A machine whose speed changes between runs by ``drift`` (log-normal), steady within one."""
    rng = np.random.default_rng(seed)

    def measure(units: int, rounds: int) -> list[float]:
        level = np.exp(drift * rng.standard_normal())
        return list(units * 1e-4 * level * (1 + noise * rng.standard_normal(rounds)))

    return measure


def test_between_run_drift_causes_false_alarms_that_the_noise_floor_removes():
    trials = run_trials(drifting(0.05), rounds_options=[10], slowdowns=[0.0, 0.5], trials=200)
    at_default = {r.slowdown: r.rate for r in detection_rows(trials, min_change=0.03, alpha=0.01)}
    assert at_default[0.0] > 0.3  # within-run samples cannot see the drift: significance alone fails
    floor = noise_floor(trials, 10, alpha=0.01)
    assert floor is not None and 0.05 < floor < 0.4
    at_floor = {r.slowdown: r.rate for r in detection_rows(trials, min_change=floor, alpha=0.01)}
    assert at_floor[0.0] <= 0.01
    assert at_floor[0.5] > 0.9
    report = render_report(trials, min_change=0.03, alpha=0.01)
    assert "Noise floor" in report and f"{floor:.1%}" in report


def test_noise_floor_allows_exactly_the_target_share_of_false_alarms():
    shifts = [1.10, 1.08, 1.05, 1.01] + [1.0] * 96
    trials = [Trial(10, 0.0, ratio, 0.001) for ratio in shifts]
    floor = noise_floor(trials, 10, alpha=0.01)
    assert 0.08 < floor < 0.081  # one of 100 (the 10%) may stay above it
    assert noise_floor(trials, 5, alpha=0.01) is None
