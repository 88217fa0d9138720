"""The suite as a user drives it: options, collection, and the JSON record it writes."""

import json
import subprocess
import sys

import pytest

from inferperf.record.keys import EXTRA_INFO_KEYS
from inferperf.record.validate import validate_run
from tests.helpers import REPO, needs, run_pytest


@pytest.mark.parametrize(
    "option, message",
    [
        (["--device", "gpu"], "--device: expected cpu, cuda, all"),
        (["--tier", "huge"], "--tier: expected one of quick, standard"),
        (["--threads", "0"], "--threads: expected a positive integer"),
        (["--weights", "/nonexistent/dir"], "--weights: /nonexistent/dir is not a directory"),
        (["--rounds", "0"], "--rounds: out of range"),
        (["--served-requests", "pyproject.toml"], "--served-requests pyproject.toml: not a directory"),
        (["--server-metrics-period", "-1"], "--server-metrics-period: expected seconds >= 0"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(option, message):
    result = run_pytest("perf_tests/test_null.py", "--collect-only", "-q", *option)
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr


def _collected(*args: str) -> list[str]:
    result = run_pytest("perf_tests/test_null.py", "perf_tests/test_batching.py", "--collect-only", "-q", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_device_option_deselects_other_devices_and_tier_picks_models():
    everything = _collected()
    assert any("-cuda-" in n for n in everything) and any("-cpu-" in n for n in everything)
    assert not any("-cuda-" in n for n in _collected("--device", "cpu"))
    assert not any("-cpu-" in n for n in _collected("--device", "cuda"))
    quick = [n for n in everything if "batching" in n]
    standard = [n for n in _collected("--tier", "standard") if "batching" in n]
    assert all("clip_t16" in n for n in quick) and all("clip_b16" in n for n in standard)
    assert len(standard) > len(quick)
    assert any("bs50" in n for n in standard) and any("bs64" in n for n in standard)


def test_null_run_writes_a_record_with_every_documented_key(tmp_path):
    out = tmp_path / "null.json"
    result = run_pytest(
        "perf_tests/test_null.py", "--benchmark-only", "--device", "cpu", "--rounds", "20",
        f"--benchmark-json={out}", "--benchmark-save-data",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert validate_run(out) == []
    record = json.loads(out.read_text())
    bench = record["benchmarks"][0]
    assert len(bench["stats"]["data"]) == 20  # raw samples kept
    assert {k.name for k in EXTRA_INFO_KEYS.values() if k.required} <= set(bench["extra_info"])
    assert bench["params"]["case"]["case_id"] == "null/none-cpu-fp32-noop-bs1"
    machine = record["machine_info"]["inferperf"]
    assert machine["schema"] == 1 and machine["versions"]["pytest-benchmark"]
    if machine["versions"].get("torch"):
        calibration = machine["calibration"]["cpu"]
        assert calibration["peak_flops_per_s"]["fp32"] > 0 and calibration["mem_bandwidth_bytes_per_s"] > 0
    # pytest-benchmark's own tooling still reads it
    compare = subprocess.run(
        [sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare", str(out)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stderr
    assert "test_null" in compare.stdout


def test_skipped_cases_are_recorded_with_their_reason(tmp_path):
    needs("torch", "torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the skip path is exercised on CPU-only machines")
    out = tmp_path / "null.json"
    result = run_pytest("perf_tests/test_null.py", "--benchmark-only", "--rounds", "5", f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = json.loads(out.read_text())["machine_info"]["inferperf"]["skipped"]
    assert skipped == [
        {"case_id": "null/none-cuda-fp32-noop-bs1", "reason": "no CUDA device visible to torch (torch.cuda.is_available() is False)"}
    ]


def test_analysis_and_cli_import_no_framework():
    code = (
        "import sys, inferperf.cli, inferperf.record.keys;"
        "bad = [m for m in ('torch', 'tensorflow', 'nvidia.dali', 'jax') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_validate_command_exit_codes(tmp_path):
    good = tmp_path / "good.json"
    result = run_pytest(
        "perf_tests/test_null.py", "--benchmark-only", "--device", "cpu", "--rounds", "5", f"--benchmark-json={good}"
    )
    assert result.returncode == 0, result.stderr
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:200])
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    stripped = tmp_path / "stripped.json"
    data = json.loads(good.read_text())
    del data["benchmarks"][0]["extra_info"]["items_per_s"]
    stripped.write_text(json.dumps(data))

    def validate(path):
        return subprocess.run([sys.executable, "-m", "inferperf", "validate", str(path)], capture_output=True, text=True)

    assert validate(good).returncode == 0
    for bad, message in [
        (truncated, "not valid JSON"),
        (foreign, "not pytest-benchmark output"),
        (stripped, "extra_info.items_per_s is missing"),
    ]:
        result = validate(bad)
        assert result.returncode == 2 and message in result.stderr and str(bad) in result.stderr
        assert "Traceback" not in result.stderr


def test_benchmark_compare_warns_only_when_the_machine_differs(tmp_path):
    storage = tmp_path / "storage"
    common = ("perf_tests/test_null.py", "--benchmark-only", "--device", "cpu", "--rounds", "5", f"--benchmark-storage=file://{storage}")
    assert run_pytest(*common, "--benchmark-autosave").returncode == 0
    same = run_pytest(*common, "--benchmark-compare")
    assert same.returncode == 0, same.stdout[-2000:]
    output = same.stdout + same.stderr
    assert "Comparing against benchmarks from" in output
    assert "machine_info is different" not in output and "machine differs" not in output  # calibration noise ignored
    (saved,) = storage.rglob("*.json")
    record = json.loads(saved.read_text())
    record["machine_info"]["inferperf"]["cpu"]["model"] = "Another CPU"
    saved.write_text(json.dumps(record))
    other = run_pytest(*common, "--benchmark-compare")
    assert "machine differs from the saved run's: cpu: Another CPU ->" in other.stdout + other.stderr


def test_benchmark_groups_are_techniques(tmp_path):
    out = tmp_path / "null.json"
    assert run_pytest("perf_tests/test_null.py", "--benchmark-only", "--device", "cpu", "--rounds", "5", f"--benchmark-json={out}").returncode == 0
    assert json.loads(out.read_text())["benchmarks"][0]["group"] == "null"
