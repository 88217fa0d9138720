"""The detection-power experiment, on a simulated machine with known noise (deterministic)."""

import numpy as np
import pytest

from inferperf.cli import main
from inferperf.detection import BASE_UNITS, render_rows, run_trials


def simulated(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)

    def measure(units: int, rounds: int) -> list[float]:
        return list(units * 1e-4 * (1 + noise * rng.standard_normal(rounds)))

    return measure


def test_quiet_machine_detects_large_slowdowns_without_false_alarms():
    rows = run_trials(simulated(0.005), rounds_options=[20], slowdowns=[0.0, 0.01, 0.10], trials=30, min_change=0.03, alpha=0.01)
    rates = {r.slowdown: r.rate for r in rows}
    assert rates[0.0] == 0.0  # A/A never flagged
    assert rates[0.10] == 1.0  # 10% always caught
    assert rates[0.01] == 0.0  # 1% is below the minimum effect


def test_too_few_rounds_cannot_detect_anything():
    rows = run_trials(simulated(0.005), rounds_options=[3], slowdowns=[0.10], trials=10, min_change=0.03, alpha=0.01)
    assert rows[0].rate == 0.0  # 3 vs 3 rounds cannot reach p < 0.01


def test_rendered_table_has_one_row_per_rounds_option():
    rows = run_trials(simulated(0.01), rounds_options=[5, 10], slowdowns=[0.0, 0.05], trials=3, min_change=0.03, alpha=0.01)
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
