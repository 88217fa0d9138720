"""Never lose a result: real crashes (ctypes segfault, abort, SIGKILL), a hang, SIGTERM, recovery.

The crashing cases live in ``tests/perf_cases/faulty_cases.py``; every run here is a real pytest
process, killed by a real signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inferperf.cli import main
from inferperf.record.validate import validate_run
from tests.helpers import REPO, run_pytest

FAULTS = "tests/perf_cases/faulty_cases.py"
NULL = "perf_tests/test_null.py"


def _case_ids(path: Path) -> list[str]:
    return [b["extra_info"]["case_id"] for b in json.loads(path.read_text())["benchmarks"]]


def _failed(path: Path) -> dict[str, str]:
    return {f["case_id"]: f["reason"] for f in json.loads(path.read_text())["machine_info"]["inferperf"]["failed"]}


@pytest.mark.slow
def test_isolate_finishes_the_session_with_every_other_case_measured(tmp_path):
    out = tmp_path / "run.json"
    result = run_pytest(
        NULL, FAULTS, "--benchmark-only", "--isolate", "--case-timeout", "8", "--device", "cpu",
        f"--benchmark-json={out}", timeout=300,
    )
    assert result.returncode == 1, result.stdout[-3000:]  # some cases failed; the session finished
    assert _case_ids(out) == [
        "null/none-cpu-fp32-noop-bs1",
        "faulty/none-cpu-fp32-ok_first-bs1",
        "faulty/none-cpu-fp32-assertion-bs1",  # measured, then its assertion failed: kept, as without isolation
        "faulty/none-cpu-fp32-ok_last-bs1",
    ]
    failed = _failed(out)
    assert "SIGSEGV" in failed["faulty/none-cpu-fp32-segfault-bs1"]
    assert "Segmentation fault" in failed["faulty/none-cpu-fp32-segfault-bs1"]
    assert "SIGABRT" in failed["faulty/none-cpu-fp32-abort-bs1"] and "faulty_cases.py" in failed["faulty/none-cpu-fp32-abort-bs1"]
    assert "timed out after 8 s" in failed["faulty/none-cpu-fp32-hang-bs1"] and "in _hang" in failed["faulty/none-cpu-fp32-hang-bs1"]
    assert "SIGKILL" in failed["faulty/none-cpu-fp32-oom_kill-bs1"]
    assert "AssertionError" in failed["faulty/none-cpu-fp32-assertion-bs1"]
    record = json.loads(out.read_text())
    assert record["machine_info"]["inferperf"]["isolated"] is True
    assert validate_run(out) == []
    assert not Path(f"{out}.journal").exists()  # the JSON holds everything: the journal went
    assert "5 failed, 3 passed" in result.stdout


def test_an_isolated_case_is_recorded_exactly_as_without_isolation(tmp_path):
    entries = {}
    for mode in ("plain", "isolated"):
        out = tmp_path / f"{mode}.json"
        args = ["--isolate"] if mode == "isolated" else []
        result = run_pytest(NULL, "--benchmark-only", "--device", "cpu", "--rounds", "30", f"--benchmark-json={out}", *args)
        assert result.returncode == 0, result.stdout[-2000:]
        (entries[mode],) = json.loads(out.read_text())["benchmarks"]
    plain, isolated = entries["plain"], entries["isolated"]
    assert set(plain) == set(isolated) and set(plain["stats"]) == set(isolated["stats"])
    assert set(plain["extra_info"]) == set(isolated["extra_info"])
    assert len(isolated["stats"]["data"]) == 30 and isolated["params"] == plain["params"]
    assert isolated["group"] == plain["group"] == "null"


@pytest.mark.parametrize("variant, signal_number", [("segfault", signal.SIGSEGV), ("abort", signal.SIGABRT), ("oom_kill", signal.SIGKILL)])
def test_the_journal_recovers_every_finished_case_after_a_crash(tmp_path, variant, signal_number):
    out = tmp_path / "run.json"
    result = run_pytest(NULL, FAULTS, "--benchmark-only", "--device", "cpu", f"--benchmark-json={out}", "-k", f"null or ok_first or {variant}")
    assert result.returncode == -signal_number  # the whole pytest process died
    journal = Path(f"{out}.journal")
    assert journal.exists() and not out.exists()
    assert main(["recover", str(journal), "-o", str(out)]) == 0
    assert _case_ids(out) == ["null/none-cpu-fp32-noop-bs1", "faulty/none-cpu-fp32-ok_first-bs1"]
    assert _failed(out) == {f"faulty/none-cpu-fp32-{variant}-bs1": "the process died while this case ran (recovered from the journal)"}
    assert validate_run(out) == []
    assert main(["compare", str(out), str(out), "--fail-on-regression"]) == 0  # compare reads it


def test_a_journal_cut_off_mid_line_still_recovers(tmp_path, capsys):
    out = tmp_path / "run.json"
    result = run_pytest(NULL, FAULTS, "--benchmark-only", "--device", "cpu", f"--benchmark-json={out}", "-k", "null or ok_first or segfault")
    assert result.returncode == -signal.SIGSEGV
    journal = Path(f"{out}.journal")
    lines = journal.read_bytes().splitlines(keepends=True)
    benchmark_line = next(i for i, line in enumerate(lines) if b'"kind": "benchmark"' in line and b"ok_first" in line)
    cut = b"".join(lines[:benchmark_line]) + lines[benchmark_line][: len(lines[benchmark_line]) // 2]
    journal.write_bytes(cut)  # the process died while writing ok_first's entry
    assert main(["recover", str(journal), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "cut off mid-line" in err and "died while running faulty/none-cpu-fp32-ok_first-bs1" in err
    assert _case_ids(out) == ["null/none-cpu-fp32-noop-bs1"]


def test_sigterm_from_a_ci_timeout_still_writes_the_finished_cases(tmp_path):
    out = tmp_path / "run.json"
    journal = Path(f"{out}.journal")
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", FAULTS, "--benchmark-only", "--device", "cpu",
         f"--benchmark-json={out}", "-k", "ok_first or hang"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (journal.exists() and b"hang" in journal.read_bytes()):
            time.sleep(0.2)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 2, output[-2000:]  # pytest's "interrupted"
    assert _case_ids(out) == ["faulty/none-cpu-fp32-ok_first-bs1"]
    assert "interrupted" in _failed(out)["faulty/none-cpu-fp32-hang-bs1"]


def test_a_json_is_written_even_when_no_case_finished(tmp_path):
    out = tmp_path / "run.json"
    out.write_text(json.dumps({"benchmarks": [{"yesterday": True}]}))  # yesterday's file must not survive
    result = run_pytest(NULL, "--benchmark-only", "--device", "cuda", f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout[-2000:]
    record = json.loads(out.read_text())
    assert record["benchmarks"] == []
    if record["machine_info"]["inferperf"]["gpus"]:
        pytest.skip("this machine has a GPU: the CUDA null case ran")
    assert record["machine_info"]["inferperf"]["skipped"][0]["case_id"] == "null/none-cuda-fp32-noop-bs1"
    assert any("nothing was measured" in p for p in validate_run(out))


def test_an_earlier_journal_is_kept_not_overwritten(tmp_path):
    out = tmp_path / "run.json"
    earlier = Path(f"{out}.journal")
    earlier.write_text('{"kind": "header", "machine_info": {}}\n')
    result = run_pytest(NULL, "--benchmark-only", "--device", "cpu", "--rounds", "5", f"--benchmark-json={out}")
    assert result.returncode == 0
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.json.journal.")]
    assert len(kept) == 1 and kept[0].read_text().startswith('{"kind": "header"')
    assert not earlier.exists()


def test_case_timeout_without_isolate_is_a_usage_error():
    result = run_pytest(NULL, "--collect-only", "--case-timeout", "5")
    assert result.returncode == 4 and "--case-timeout needs --isolate" in result.stderr


def test_recover_refuses_what_is_not_a_journal(tmp_path, capsys):
    bogus = tmp_path / "x.journal"
    bogus.write_text("hello\n")
    assert main(["recover", str(bogus), "-o", str(tmp_path / "out.json")]) == 2
    assert main(["recover", str(bogus), "-o", str(bogus)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "not an inferperf journal" in err[0] and "is one of the inputs" in err[1]


def test_an_isolated_child_inherits_the_options_that_shape_a_measurement(tmp_path):
    out = tmp_path / "run.json"
    result = run_pytest(
        NULL, "--benchmark-only", "--device", "cpu", "--isolate", "--rounds", "7", "--warmup-rounds", "0",
        "--threads", "1", f"--benchmark-json={out}",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    (entry,) = json.loads(out.read_text())["benchmarks"]
    assert entry["stats"]["rounds"] == 7 and entry["extra_info"]["warmup_rounds"] == 0
    assert json.loads(out.read_text())["machine_info"]["inferperf"]["threads_option"] == 1
    assert os.environ.get("INFERPERF_ISOLATED_CHILD") is None
