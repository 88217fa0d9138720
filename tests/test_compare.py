"""`inferperf compare` as users run it: exit codes, outputs, bad input, matching."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferperf.analysis.select import ExpressionError, compile_expression
from inferperf.cli import main
from tests.runs import make_run, write_run

CASES = ("batching/m-cpu-fp32-single-bs1", "batching/m-cpu-fp32-manual-bs8", "ladder/deit-cpu-int8dyn-eager-bs1")


def _samples(scale: float, seed: int, n: int = 20) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(scale * (0.01 * (1 + 0.005 * rng.standard_normal(n))))


def _run(tmp_path, name, scales, **kwargs):
    cases = {case: _samples(scale, seed=i + hash(name) % 1000) for i, (case, scale) in enumerate(zip(CASES, scales))}
    return write_run(tmp_path / f"{name}.json", make_run(cases, **kwargs))


def test_compare_prints_a_table_and_exits_0(tmp_path, capsys):
    a = _run(tmp_path, "a", (1, 1, 1))
    b = _run(tmp_path, "b", (1, 1, 1))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    for case in CASES:
        assert case in out
    assert "3 same" in out


def test_a_slowed_run_fails_the_gate(tmp_path, capsys):
    a = _run(tmp_path, "a", (1, 1, 1))
    b = _run(tmp_path, "b", (1, 1.10, 1))
    assert main(["compare", str(a), str(b)]) == 0  # reporting alone never fails
    assert main(["compare", str(a), str(b), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "1 slower" in out
    slowed = [line for line in out.splitlines() if line.startswith(CASES[1])][0]
    assert re.search(r"\+(9|10|11)\.\d%", slowed) and "slower" in slowed
    # below the minimum effect it passes the gate
    assert main(["compare", str(a), str(b), "--fail-on-regression", "--min-change", "0.2"]) == 0


@pytest.mark.parametrize("version", ["3.2.3", "4.0.0", "5.1.0"])
@pytest.mark.parametrize("with_data", [True, False])
@pytest.mark.parametrize("with_extra", [True, False])
def test_reads_pytest_benchmark_versions_with_and_without_samples_or_extra_info(tmp_path, version, with_data, with_extra):
    kwargs = dict(version=version, with_data=with_data, with_extra=with_extra)
    a = _run(tmp_path, "a", (1, 1, 1), **kwargs)
    b = _run(tmp_path, "b", (1, 1.5, 1), **kwargs)
    out = tmp_path / "out.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["comparisons"]) == 3
    slowed = [c for c in result["comparisons"] if c["verdict"] == "slower"]
    assert len(slowed) == 1 and slowed[0]["ratio"] == pytest.approx(1.5, rel=0.02)
    assert {c["method"] for c in result["comparisons"]} == {"exact" if with_data else "summary"}


def _bad_input(tmp_path, name: str, text: str):
    return write_run(tmp_path / name, {}) if text is None else (tmp_path / name).write_text(text) or tmp_path / name


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda text, run: text[: len(text) // 2], "not valid JSON"),
        (lambda text, run: json.dumps({"results": []}), "not pytest-benchmark output"),
        (lambda text, run: json.dumps({**run, "benchmarks": [{**run["benchmarks"][0], "stats": {}}]}), "stats.min is missing"),
        (
            lambda text, run: json.dumps({**run, "benchmarks": [{**run["benchmarks"][0], "stats": {**run["benchmarks"][0]["stats"], "median": 0}}]}),
            "stats.median is 0",
        ),
        (
            lambda text, run: json.dumps({**run, "benchmarks": [{**run["benchmarks"][0], "stats": {**run["benchmarks"][0]["stats"], "mean": float("nan")}}]}),
            "stats.mean is nan",
        ),
        (lambda text, run: json.dumps({**run, "benchmarks": run["benchmarks"] + run["benchmarks"][:1]}), "duplicate case id"),
        (lambda text, run: json.dumps({**run, "machine_info": {"inferperf": {"schema": 99}}}), "schema is 99"),
    ],
    ids=["truncated", "foreign", "missing-stats", "zero-time", "nan-time", "duplicate-ids", "future-schema"],
)
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path, mutate, message):
    good = _run(tmp_path, "good", (1, 1, 1))
    text = good.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(mutate(text, json.loads(text)))
    result = subprocess.run(
        [sys.executable, "-m", "inferperf", "compare", str(good), str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_with_one_bad_file_says_which_it_skipped(tmp_path, capsys):
    folder = tmp_path / "results" / "box"
    _run(folder, "0001_a", (1, 1, 1))
    _run(folder, "0002_b", (1, 1, 1))
    (folder / "0003_broken.json").write_text("{not json")
    assert main(["compare", str(tmp_path / "results")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "0003_broken.json" in captured.err


def test_mismatched_timers_are_not_comparable(tmp_path):
    a = _run(tmp_path, "a", (1, 1, 1))
    run_b = json.loads(_run(tmp_path, "b", (1, 1, 1)).read_text())
    run_b["benchmarks"][0]["options"]["timer"] = "process_time"
    b = write_run(tmp_path / "b2.json", run_b)
    out = tmp_path / "out.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 0
    notes = {c["case_id"]: (c["verdict"], c["note"]) for c in json.loads(out.read_text())["comparisons"]}
    verdict, note = notes[CASES[0]]
    assert verdict == "not comparable" and "timers differ" in note


def test_cases_missing_on_one_side_say_why(tmp_path):
    a = write_run(tmp_path / "a.json", make_run({CASES[0]: _samples(1, 1), CASES[1]: _samples(1, 2)}))
    run_b = make_run({CASES[0]: _samples(1, 3)}, machine={"inferperf": {"skipped": [{"case_id": CASES[1], "reason": "out of memory at batch 8 on cuda"}]}})
    b = write_run(tmp_path / "b.json", run_b)
    out = tmp_path / "out.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 0
    row = [c for c in json.loads(out.read_text())["comparisons"] if c["case_id"] == CASES[1]][0]
    assert row["verdict"] == "not comparable" and "out of memory" in row["note"]


def test_file_and_benchmark_order_do_not_change_the_result(tmp_path):
    cases = {c: _samples(s, i) for i, (c, s) in enumerate(zip(CASES, (1, 1.2, 0.9)))}
    base = write_run(tmp_path / "base.json", make_run({c: _samples(1, 10 + i) for i, c in enumerate(CASES)}))
    forward = write_run(tmp_path / "x.json", make_run(cases))
    backward = write_run(tmp_path / "y.json", make_run(dict(reversed(list(cases.items())))))
    out1, out2 = tmp_path / "o1.json", tmp_path / "o2.json"
    main(["compare", str(base), str(forward), "--json", str(out1), "--labels", "base,new"])
    main(["compare", str(base), str(backward), "--json", str(out2), "--labels", "base,new"])
    assert json.loads(out1.read_text())["comparisons"] == json.loads(out2.read_text())["comparisons"]


def test_technique_view_calibrated_view_and_machine_differences(tmp_path):
    extra = {
        CASES[1]: {"baseline_case_id": CASES[0], "items_per_round": 8, "roofline_fraction": 0.4},
        CASES[0]: {"items_per_round": 8, "roofline_fraction": 0.2},
    }
    cpu_box = {"node": "laptop", "inferperf": {"cpu": {"model": "Laptop CPU"}, "versions": {"torch": "2.15.0"}}}
    gpu_box = {"node": "gpubox", "inferperf": {"cpu": {"model": "Server CPU"}, "versions": {"torch": "2.14.0"}, "gpus": [{"name": "H100"}]}}
    a = write_run(tmp_path / "a.json", make_run({CASES[0]: _samples(1, 1), CASES[1]: _samples(0.5, 2)}, extra=extra, machine=cpu_box))
    b = write_run(tmp_path / "b.json", make_run({CASES[0]: _samples(1, 3), CASES[1]: _samples(0.25, 4)}, extra=extra, machine=gpu_box))
    out, md = tmp_path / "out.json", tmp_path / "out.md"
    assert main(["compare", str(a), str(b), "--json", str(out), "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    speedups = {s["run"]: s["speedup"] for s in result["speedups"]}
    assert speedups["a"] == pytest.approx(2.0, rel=0.02) and speedups["b"] == pytest.approx(4.0, rel=0.02)
    assert result["roofline_fraction"][CASES[1]] == {"a": 0.4, "b": 0.4}
    assert result["machine_differences"]["cpu"] == ["Laptop CPU", "Server CPU"]
    assert result["machine_differences"]["gpus"] == ["none", "H100"]
    assert "version torch" in result["machine_differences"]
    text = md.read_text()
    assert "Technique speedups" in text and "Roofline fraction" in text


def test_outputs_filters_and_grouping(tmp_path, capsys):
    a = _run(tmp_path, "a", (1, 1, 1))
    b = _run(tmp_path, "b", (1, 1.1, 1))
    html, csv, pngs = tmp_path / "r.html", tmp_path / "r.csv", tmp_path / "plots"
    assert main(["compare", str(a), str(b), "--html", str(html), "--csv", str(csv), "--png", str(pngs), "-k", "batching and not single", "--group-by", "device"]) == 0
    assert (pngs / "ratios.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert CASES[1] in out and CASES[0] not in out and CASES[2] not in out
    assert "device cpu" in out
    assert html.read_text().count("<img") >= 1
    rows = csv.read_text().strip().splitlines()
    assert rows[0].startswith("case_id,") and len(rows) == 2


def test_usage_errors_exit_2(tmp_path, capsys):
    a = _run(tmp_path, "a", (1, 1, 1))
    assert main(["compare", str(a)]) == 2
    assert main(["compare", str(a), str(tmp_path / "missing.json")]) == 2
    assert main(["compare", str(a), str(a), "-k", "cpu and"]) == 2
    assert main(["compare", str(a), str(a), "--alpha", "2"]) == 2
    assert main(["compare", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "unexpected end" in err and "--alpha" in err


def test_keyword_expressions():
    match = compile_expression("cuda and (int8 or bf16) and not bs1")
    assert match("ladder/deit-cuda-int8dyn-eager-bs8")
    assert not match("ladder/deit-cuda-int8dyn-eager-bs1")
    assert not match("ladder/deit-cpu-bf16-eager-bs8")
    assert compile_expression(None)("anything")
    for broken in ("(cpu", "cpu or", "and cpu", "cpu )"):
        with pytest.raises(ExpressionError):
            compile_expression(broken)


def _png_height(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[20:24], "big")  # the IHDR chunk's height


@pytest.mark.parametrize("runs", [2, 3])
def test_a_fleet_comparison_plots_its_most_changed_cases_not_every_case(tmp_path, runs):
    from inferperf.analysis.compare_report import PLOT_ROWS

    count = PLOT_ROWS * 3
    ids = [f"batching/m{i:03d}-cpu-fp32-manual-bs8" for i in range(count)]
    extra = {case_id: {"baseline_case_id": ids[0]} for case_id in ids[1:]}
    files = [write_run(tmp_path / "r0.json", make_run({c: _samples(1, i) for i, c in enumerate(ids)}, extra=extra))]
    for run in range(1, runs):  # every fifth case 20% slower: the plots must show those
        cases = {c: _samples(1.2 if i % 5 == 0 else 1.0, 100 * run + i) for i, c in enumerate(ids)}
        files.append(write_run(tmp_path / f"r{run}.json", make_run(cases, extra=extra)))
    out, plots = tmp_path / "out.json", tmp_path / "plots"
    assert main(["compare", *map(str, files), "--png", str(plots), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["comparisons"]
    assert len(rows) == count * (runs - 1) and sum(r["verdict"] == "slower" for r in rows) >= count // 5 * (runs - 1) * 0.9
    # one row per plotted case: a figure of all 180 cases would be over 5,000 pixels tall
    assert _png_height(plots / "ratios.png") < 0.3 * 110 * (PLOT_ROWS + 12)
    assert _png_height(plots / "speedups.png") < 0.35 * 110 * (PLOT_ROWS + 12) * max(1, runs / 2)
