"""`inferperf report`: one run as a table per technique."""

from inferperf.cli import main
from tests.runs import make_run, write_run

SINGLE = "batching/clip_t16-cpu-fp32-single-bs1"
MANUAL = "batching/clip_t16-cpu-fp32-manual-bs8"
EAGER = "ladder/deit_tiny-cpu-fp32-eager-bs1"


def test_report_shows_speedups_sizes_and_details(tmp_path, capsys):
    extra = {
        SINGLE: {"items_per_round": 32, "stage_s": {"data": 0.2, "model": 0.8}},
        MANUAL: {"items_per_round": 32, "baseline_case_id": SINGLE, "model_bytes": 20_600_000, "roofline_fraction": 0.5},
        EAGER: {"agreement": {"cosine": 1.0, "top1_match": 1.0, "images": 16}},
    }
    machine = {"inferperf": {"skipped": [{"case_id": "batching/clip_t16-cuda-fp32-single-bs1", "reason": "no CUDA device"}]}}
    run = write_run(tmp_path / "run.json", make_run({SINGLE: [1.0, 1.1, 1.05], MANUAL: [0.5, 0.52, 0.51], EAGER: [0.02] * 3}, extra=extra, machine=machine))
    assert main(["report", str(run), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "#### batching" in out and "#### ladder" in out and "#### Skipped cases" in out
    manual_row = [line for line in out.splitlines() if "manual-bs8" in line][0]
    assert "2.06x" in manual_row and "20.6 MB" in manual_row and "50.0%" in manual_row
    assert "data 20% / model 80%" in out and "cos 1.0000; top-1 100%" in out and "no CUDA device" in out
    assert main(["report", str(run), "-k", "ladder"]) == 0
    assert "batching" not in capsys.readouterr().out.split("Skipped")[0]
    assert main(["report", str(run), "-k", "nothing_matches"]) == 2
