"""scripts/nightly end to end on a temporary clone: real pytest runs, a real store, a real site.

Synthetic nights are made from the real run the script stored, scaled: a store whose newest nights
stepped 8% slower must fail the gate (exit 1); a store whose hardware changed at night 15 (every
case 30% slower from then on) must pass it and say "machine changed".
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO
from tests.runs import stats_of

MACHINE = "laptop"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The working tree (tracked and untracked, not ignored) copied and committed in a fresh repository."""
    target = tmp_path_factory.mktemp("clone") / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone"]):
        subprocess.run(command, cwd=target, check=True)
    return target


def nightly(clone: Path, store: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(clone), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, str(clone / "scripts" / "nightly"), "--store", str(store), "--site", str(site), "--machine", MACHINE,
         "--device", "cpu", "--", "-k", "null", "--rounds", "3"],
        cwd=clone, capture_output=True, text=True, timeout=600, env=env,
    )


def stored_runs(store: Path) -> list[Path]:
    return sorted((store / MACHINE).rglob("*.json"))


def synthetic_store(real_run: Path, store: Path, levels: list[float], cpu_models: list[str]) -> None:
    """Nights made from a real run: night i's times scaled by ``levels[i]`` (2% night noise) on CPU ``cpu_models[i]``."""
    data = json.loads(real_run.read_text())
    folder = store / MACHINE / real_run.parent.name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    start = datetime.now(timezone.utc) - timedelta(days=len(levels) + 1)
    for night, (level, model) in enumerate(zip(levels, cpu_models)):
        run = copy.deepcopy(data)
        factor = level * (1 + 0.02 * rng.standard_normal())
        for bench in run["benchmarks"]:
            # rounds as a longer run would give them (0.5% apart), around the real median: 3 rounds of
            # a sub-microsecond case vary by 3x, which would bury any step in their own noise
            median = bench["stats"]["median"]
            bench["stats"] = stats_of(list(median * factor * (1 + 0.005 * rng.standard_normal(20))))
        run["machine_info"]["inferperf"]["cpu"]["model"] = model
        run["commit_info"]["id"] = f"{night:02d}" + "c" * 38
        run["datetime"] = (start + timedelta(days=night)).isoformat()
        (folder / f"{night + 1:04d}_{night:02d}cc_synthetic.json").write_text(json.dumps(run))


@pytest.mark.slow
def test_two_nights_store_two_runs_and_build_a_site(clone, tmp_path):
    store, site = tmp_path / "store", tmp_path / "site"
    for night in (1, 2):
        result = nightly(clone, store, site)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(stored_runs(store)) == night
    index = (site / "index.html").read_text()
    assert MACHINE in index and "summary" in index
    page = next(site.glob(f"{MACHINE}-*.html")).read_text()
    assert "null/none-cpu-fp32-noop-bs1" in page and "<svg" in page
    assert len(list(site.glob(f"{MACHINE}-*.md"))) == 1
    for fmt in ("github-smaller", "github-bigger", "bencher"):
        assert json.loads(next((site / "exports").glob(f"{MACHINE}-*-{fmt}.json")).read_text())
    run = json.loads(stored_runs(store)[-1].read_text())
    assert run["commit_info"]["id"] and run["benchmarks"][0]["stats"]["rounds"] == 3


@pytest.mark.slow
def test_a_stepped_store_fails_the_gate_and_a_hardware_change_does_not(clone, tmp_path):
    seed_store = tmp_path / "seed"
    first = nightly(clone, seed_store, tmp_path / "seed-site")
    assert first.returncode == 0, first.stderr[-3000:]
    (real_run,) = stored_runs(seed_store)
    model = json.loads(real_run.read_text())["machine_info"]["inferperf"]["cpu"]["model"]

    # 16 nights at the old level, then 6 nights 8% slower: tonight's real run lands at the new level
    stepped = tmp_path / "stepped"
    synthetic_store(real_run, stepped, [1 / 1.08] * 16 + [1.0] * 6, [model] * 22)
    result = nightly(clone, stepped, tmp_path / "stepped-site")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "regression:" in result.stderr

    # 14 nights on another CPU 30% faster, then this machine from night 15: a new segment, no regression
    changed = tmp_path / "changed"
    synthetic_store(real_run, changed, [1 / 1.3] * 14 + [1.0] * 15, ["Older CPU"] * 14 + [model] * 15)
    result = nightly(clone, changed, tmp_path / "changed-site")
    assert result.returncode == 0, result.stderr[-3000:]
    page = next((tmp_path / "changed-site").glob(f"{MACHINE}-*.html")).read_text()
    assert "machine changed" in page and "Older CPU" in page
    summary = next((tmp_path / "changed-site").glob(f"{MACHINE}-*.md")).read_text()
    assert "machine changed" in summary


def test_a_broken_run_is_stored_and_exits_2(clone, tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(clone)}
    result = subprocess.run(
        [sys.executable, str(clone / "scripts" / "nightly"), "--store", str(store), "--site", str(tmp_path / "site"),
         "--machine", MACHINE, "--device", "cpu", "--", str(clone / "perf_tests" / "test_null.py"),
         str(clone / "tests" / "perf_cases" / "faulty_cases.py"), "-k", "null or ok_first or abort"],
        cwd=clone, capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "broken run" in result.stderr
    (run,) = stored_runs(store)  # stored even though a case crashed
    record = json.loads(run.read_text())
    assert {b["extra_info"]["case_id"] for b in record["benchmarks"]} == {"null/none-cpu-fp32-noop-bs1", "faulty/none-cpu-fp32-ok_first-bs1"}
    assert "SIGABRT" in record["machine_info"]["inferperf"]["failed"][0]["reason"]
