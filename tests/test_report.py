"""`inferperf report`: one run as a table per technique."""

from inferperf.cli import main
from tests.runs import make_run, write_run

SINGLE = "batching/clip_t16-cpu-fp32-single-bs1"
MANUAL = "batching/clip_t16-cpu-fp32-manual-bs8"
EAGER = "ladder/deit_tiny-cpu-fp32-eager-bs1"
COMPILED = "ladder/deit_tiny-cpu-fp32-compile-bs1"
AOTI = "ladder/deit_tiny-cpu-fp32-aoti-bs1"
COMPILED_COLD = "ladder/deit_tiny-cpu-fp32-compile-bs8"


def test_report_shows_speedups_sizes_and_details(tmp_path, capsys):
    extra = {
        SINGLE: {"items_per_round": 32, "stage_s": {"data": 0.2, "model": 0.8}},
        MANUAL: {"items_per_round": 32, "baseline_case_id": SINGLE, "model_bytes": 20_600_000, "roofline_fraction": 0.5},
        EAGER: {"agreement": {"cosine": 1.0, "top1_match": 1.0, "images": 16}},
        COMPILED: {"setup_s": 5.3, "compile": {"cache_files_before": 102, "fx_graph_cache_hits": 1, "fx_graph_cache_misses": 0}},
        AOTI: {"setup_s": 26.3, "compile": {"cache_files_before": 0}},
        COMPILED_COLD: {"setup_s": 12.4, "compile": {"cache_files_before": 273, "fx_graph_cache_hits": 0, "fx_graph_cache_misses": 1}},
    }
    machine = {"inferperf": {"skipped": [{"case_id": "batching/clip_t16-cuda-fp32-single-bs1", "reason": "no CUDA device"}]}}
    run = write_run(tmp_path / "run.json", make_run({SINGLE: [1.0, 1.1, 1.05], MANUAL: [0.5, 0.52, 0.51], EAGER: [0.02] * 3, COMPILED: [0.01] * 3, AOTI: [0.01] * 3, COMPILED_COLD: [0.01] * 3}, extra=extra, machine=machine))
    assert main(["report", str(run), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "#### batching" in out and "#### ladder" in out and "#### Skipped cases" in out
    manual_row = [line for line in out.splitlines() if "manual-bs8" in line][0]
    assert "2.06x" in manual_row and "20.6 MB" in manual_row and "50.0%" in manual_row
    # a compiled case's set-up says whether Inductor's cache held its graph
    assert "(cached)" in [line for line in out.splitlines() if "-compile-bs1" in line][0]
    assert "(cold cache)" in [line for line in out.splitlines() if "-aoti-bs1" in line][0]
    assert "(not cached)" in [line for line in out.splitlines() if "-compile-bs8" in line][0]
    assert "data 20% / model 80%" in out and "cos 1.0000; top-1 100%" in out and "no CUDA device" in out
    assert main(["report", str(run), "-k", "ladder"]) == 0
    assert "batching" not in capsys.readouterr().out.split("Skipped")[0]
    assert main(["report", str(run), "-k", "nothing_matches"]) == 2


def test_report_shows_the_goodput_curve_as_a_table_and_a_plot(tmp_path, capsys):
    base = "generation/llama_tiny-cpu-fp32-served_vllm_"
    slo = {"ttft_s": 0.25, "tpot_s": 0.02, "e2e_s": None}
    extra = {
        base + "poisson_r4-bs1": {"server": "vLLM", "load": {"mode": "poisson", "rate_rps": 4.0}, "goodput_rps": 3.9,
                                  "ttft_p99_from_schedule_s": 0.05, "slo": slo},
        base + "closed_c4-bs4": {"server": "vLLM", "load": {"mode": "closed", "concurrency": 4}, "goodput_rps": 12.0},
        base + "capacity-bs1": {"server": "vLLM", "slo": slo, "max_rate_meeting_slo_rps": 8.0, "goodput_curve": [
            {"rate_rps": 1.0, "goodput_rps": 1.0, "ttft_p99_from_schedule_s": 0.03, "meets_slo": True},
            {"rate_rps": 16.0, "goodput_rps": 9.0, "ttft_p99_from_schedule_s": 0.9, "meets_slo": False}]},
    }
    run = write_run(tmp_path / "run.json", make_run({case: [1.0, 1.1, 1.2] for case in extra}, extra=extra))
    page = tmp_path / "served.html"
    assert main(["report", str(run), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    curve = out[out.index("Goodput curves"):]
    rows = [line for line in curve.splitlines() if line.startswith("vLLM")]
    # the closed loop offers no rate: the open-loop case and the two probes, in rate order
    assert [row.split()[1] for row in rows] == ["1", "4", "16"]
    assert "capacity probe" in rows[0] and "served_vllm_poisson_r4" in rows[1] and " no " in rows[2]
    html_text = page.read_text()
    assert "<h2>Goodput curves</h2>" in html_text and "data:image/png;base64," in html_text
    assert main(["report", str(run), "-k", "batching"]) == 2  # nothing selected: one line, exit 2
