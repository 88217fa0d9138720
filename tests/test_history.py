"""`inferperf history` and exports on synthetic nightly stores with known steps."""

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from inferperf.analysis.changepoint import detect_steps
from inferperf.cli import main
from tests.helpers import run_pytest
from tests.runs import make_run, write_run

CASE = "batching/clip_t16-cpu-fp32-manual-bs8"
OTHER = "batching/clip_t16-cpu-fp32-single-bs1"


def nightly_store(root, machine, levels, seed=0, noise=0.02, rounds=10):
    """One run per night; ``levels[i]`` scales night i's times; per-night noise ``noise``."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 10, 1, 2, 0, 0)
    for night, level in enumerate(levels):
        night_factor = level * (1 + noise * rng.standard_normal())
        cases = {
            c: list(0.05 * night_factor * (1 + 0.005 * rng.standard_normal(rounds))) for c in (CASE, OTHER)
        }
        run = make_run(cases)
        run["commit_info"] = {"id": f"c{night:02d}" + "0" * 30, "branch": "main", "dirty": False}
        run["datetime"] = (start + timedelta(days=night)).isoformat()
        write_run(root / machine / "Linux-CPython-3.11-64bit" / f"{night + 1:04d}_c{night:02d}.json", run)
    return root


def _series_steps(tmp_path, root, *args):
    out = tmp_path / "h.md"
    code = main(["history", str(root), "--markdown", str(out), *args])
    return code, out.read_text()


def test_an_8_percent_step_is_found_at_its_commit_and_nowhere_else(tmp_path):
    levels = [1.0] * 17 + [1.08] * 13
    root = nightly_store(tmp_path / "results", "box", levels, seed=3)
    code, text = _series_steps(tmp_path, root)
    assert code == 0
    rows = [line for line in text.splitlines() if line.startswith("| batching/")]
    assert len(rows) == 2, text  # both cases of the machine got slower at the same night
    for row in rows:
        assert "c16" in row and "..c17" in row and "(slower)" in row
        change = float(row.split("|")[2].split("%")[0])
        assert 5 < change < 11


def test_a_flat_noisy_history_has_no_step(tmp_path):
    root = nightly_store(tmp_path / "results", "box", [1.0] * 30, seed=5)
    code, text = _series_steps(tmp_path, root)
    assert code == 0 and "No steps detected." in text


@pytest.mark.parametrize("seed", range(30))
def test_flat_histories_stay_flat_across_seeds(seed):
    rng = np.random.default_rng(seed)
    values = np.log(1 + 0.02 * rng.standard_normal(30))
    steps, _, _ = detect_steps(values, np.full(30, 0.002), min_change=0.03)
    assert steps == []


def test_a_machine_change_is_not_a_regression(tmp_path):
    root = tmp_path / "results"
    nightly_store(root, "laptop", [1.0] * 15, seed=1)
    nightly_store(root, "gpu-box", [0.5] * 15, seed=2)  # other hardware: half the time
    code, text = _series_steps(tmp_path, root, "--fail-on-regression")
    assert code == 0
    assert "#### laptop" in text and "#### gpu-box" in text and "(slower)" not in text


def test_the_newest_step_gates_and_plots_are_written(tmp_path):
    root = nightly_store(tmp_path / "results", "box", [1.0] * 20 + [1.10] * 4, seed=7)
    output = tmp_path / "report"
    assert main(["history", str(root), "--fail-on-regression", "--output", str(output), "-k", "manual"]) == 1
    assert (output / "index.html").exists() and len(list(output.glob("box-*.html"))) == 1
    assert len(list(output.glob("box-*.md"))) == 1  # one summary per machine
    page = next(output.glob("box-*.html")).read_text()
    assert page.index("<table>") < page.index("<img")  # the summary table comes first
    assert "<svg" in page and "+8.8%" in page
    pngs = list(output.glob("box-*/*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    improved = nightly_store(tmp_path / "improved", "box", [1.0] * 20 + [0.9] * 4, seed=7)
    assert main(["history", str(improved), "--fail-on-regression", "--no-plots"]) == 0


def test_past_max_plots_the_series_with_a_regression_get_the_plots(tmp_path, capsys):
    from inferperf.analysis.history import file_stem

    rng = np.random.default_rng(11)
    root = tmp_path / "results"
    for night in range(16):  # CASE 10% slower from night 12, OTHER flat
        levels = {CASE: 1.10 if night >= 12 else 1.0, OTHER: 1.0}
        run = make_run({c: list(0.05 * level * (1 + 0.005 * rng.standard_normal(10))) for c, level in levels.items()})
        run["commit_info"] = {"id": f"c{night:02d}" + "0" * 30, "branch": "main", "dirty": False}
        run["datetime"] = (datetime(2026, 10, 1, 2) + timedelta(days=night)).isoformat()
        write_run(root / "box" / "Linux-CPython-3.11-64bit" / f"{night + 1:04d}_c{night:02d}.json", run)
    one, every = tmp_path / "one", tmp_path / "every"
    assert main(["history", str(root), "--output", str(one), "--max-plots", "1"]) == 0
    pngs = list(one.glob("box-*/*.png"))
    assert [p.stem for p in pngs] == [file_stem(CASE)]  # the regression's plot, not the flat series'
    assert "Trend plots for 1 of the 2 series" in next(one.glob("box-*.html")).read_text()
    assert main(["history", str(root), "--output", str(every), "--max-plots", "0"]) == 0
    assert len(list(every.glob("box-*/*.png"))) == 2 and "Trend plots for" not in next(every.glob("box-*.html")).read_text()
    assert main(["history", str(root), "--max-plots", "-1"]) == 2
    assert "--max-plots -1" in capsys.readouterr().err


def test_history_bad_input(tmp_path, capsys):
    assert main(["history", str(tmp_path / "nothing")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty")]) == 2
    assert "holds no readable runs" in capsys.readouterr().err


def test_exports(tmp_path):
    run = make_run({CASE: [0.2, 0.21, 0.19]}, extra={CASE: {"items_per_round": 10, "device": "cpu"}})
    path = write_run(tmp_path / "run.json", run)
    smaller, bigger, bencher = tmp_path / "s.json", tmp_path / "b.json", tmp_path / "m.json"
    assert main(["export", str(path), "--format", "github-smaller", "-o", str(smaller)]) == 0
    assert main(["export", str(path), "--format", "github-bigger", "-o", str(bigger)]) == 0
    assert main(["export", str(path), "--format", "bencher", "-o", str(bencher)]) == 0
    (entry,) = json.loads(smaller.read_text())
    assert entry["name"] == CASE and entry["unit"] == "s" and entry["value"] == pytest.approx(0.02)
    (entry,) = json.loads(bigger.read_text())
    assert entry["unit"] == "items/s" and entry["value"] == pytest.approx(50.0)
    metric = json.loads(bencher.read_text())[CASE]
    assert metric["latency"]["value"] == pytest.approx(0.02e9)
    assert metric["throughput"]["lower_value"] < metric["throughput"]["value"] < metric["throughput"]["upper_value"]
    assert main(["export", str(path), "--format", "nope"]) == 2


def test_autosaved_runs_accumulate_without_overwriting(tmp_path):
    storage = tmp_path / "results" / "box"
    for _ in range(2):
        result = run_pytest(
            "perf_tests/test_null.py", "--benchmark-only", "--device", "cpu", "--rounds", "5",
            "--benchmark-autosave", f"--benchmark-storage=file://{storage}",
        )
        assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in storage.rglob("*.json"))
    assert [f[:4] for f in files] == ["0001", "0002"]
    assert main(["history", str(tmp_path / "results"), "--no-plots"]) == 0


def test_reference_runs_beside_the_machines_are_not_a_machine(tmp_path):
    from inferperf.analysis.history import machine_runs

    root = nightly_store(tmp_path / "results", "box", [1.0] * 4, seed=1)
    write_run(root / "reference" / "quick-cpu.json", make_run({"null/none-cpu-fp32-noop-bs1": [1e-6] * 5}))
    per_machine, skipped = machine_runs(root)
    assert list(per_machine) == ["box"]
    assert any("reference" in line for line in skipped)


# --------------------------------------------------------------------------------------------
# The index: the same history, and a new night reads one file


def _series_of(root, *args):
    from inferperf.analysis.history import build_series, machine_points
    from inferperf.analysis.history_index import indexed_points
    from inferperf.analysis.settings import HistorySettings

    settings = HistorySettings()
    if "--no-index" in args:
        per_machine, skipped = machine_points(root)
    else:
        per_machine, skipped, _ = indexed_points(root, args[0])
    return [
        (s.machine, s.case_id, [(p.when, p.commit, p.median_s, p.log_se, p.items_per_s, p.identity, p.contended) for p in s.points],
         s.steps, s.segments, s.tau, s.machine_changes)
        for machine, runs in sorted(per_machine.items()) for s in build_series(machine, runs, settings, lambda _: True)
    ], skipped


def test_the_index_gives_the_same_history_and_a_new_night_reads_one_file(tmp_path):
    from inferperf.analysis.history_index import update_index

    levels = [1.0] * 12 + [1.08] * 8
    root = nightly_store(tmp_path / "results", "box", levels, seed=3)
    write_run(root / "box" / "Linux-CPython-3.11-64bit" / "0099_broken.json", {"benchmarks": "no"})
    index = tmp_path / "index.sqlite"
    direct = _series_of(root, "--no-index")
    assert _series_of(root, index) == direct
    assert any("0099_broken" in line for line in direct[1])
    # a new night: only its file is read
    nightly_store(tmp_path / "next", "box", levels + [1.08], seed=3)
    newest = sorted((tmp_path / "next" / "box" / "Linux-CPython-3.11-64bit").glob("0021_*.json"))[0]
    (root / "box" / "Linux-CPython-3.11-64bit" / newest.name).write_bytes(newest.read_bytes())
    update = update_index(root, index)
    assert (update.read, update.dropped, update.rebuilt) == (1, 0, False) and update.reused == 21
    assert _series_of(root, index) == _series_of(root, "--no-index")
    # a file rewritten is read again; a file removed is dropped
    (root / "box" / "Linux-CPython-3.11-64bit" / "0099_broken.json").unlink()
    update = update_index(root, index)
    assert (update.read, update.dropped) == (0, 1)


def test_a_corrupt_or_older_index_is_rebuilt_from_the_files(tmp_path, capsys):
    import sqlite3

    root = nightly_store(tmp_path / "results", "box", [1.0] * 5, seed=2)
    index = tmp_path / "index.sqlite"
    index.write_bytes(b"not a database at all" * 100)
    assert main(["history", str(root), "--index", str(index)]) == 0
    assert "rebuilt, 5 run files read" in capsys.readouterr().err
    with sqlite3.connect(index) as connection:
        connection.execute("UPDATE meta SET value = '0' WHERE key = 'version'")
    assert main(["history", str(root), "--index", str(index)]) == 0
    assert "rebuilt, 5 run files read" in capsys.readouterr().err
    assert main(["history", str(root), "--index", str(index)]) == 0
    assert "0 run files read, 5 reused" in capsys.readouterr().err
    assert main(["history", str(root), "--index", str(index), "--no-index"]) == 2


def test_an_index_inside_the_store_is_refused_and_the_run_is_untouched(tmp_path, capsys):
    root = nightly_store(tmp_path / "results", "box", [1.0] * 3, seed=2)
    run = sorted(root.rglob("*.json"))[0]
    before = run.read_bytes()
    assert main(["history", str(root), "--index", str(run)]) == 2
    assert "inside the results folder" in capsys.readouterr().err
    assert run.read_bytes() == before
