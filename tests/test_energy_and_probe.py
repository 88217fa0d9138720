"""Energy meters (RAPL or a reason), and the AOTInductor probe: a crashing child is a skip, not a lost session."""

from __future__ import annotations

import pytest

from inferperf.energy import EnergyMeter, nvml_meter, rapl_meter
from tests.helpers import needs


def test_rapl_is_read_where_readable_and_otherwise_says_why(tmp_path):
    meter = rapl_meter()
    assert (meter.source == "rapl") != (meter.reason is not None)
    # a powercap tree as the kernel lays it out: a package with a sub-domain that must not be added
    package = tmp_path / "intel-rapl:0"
    (package / "intel-rapl:0:0").mkdir(parents=True)
    (package / "name").write_text("package-0\n")
    (package / "energy_uj").write_text("1000000\n")
    (package / "max_energy_range_uj").write_text("262143328850\n")
    (package / "intel-rapl:0:0" / "name").write_text("core\n")
    meter = rapl_meter(str(tmp_path))
    assert meter.source == "rapl" and meter.read_j() == pytest.approx(1.0)
    (package / "energy_uj").write_text("3500000\n")
    assert meter.between(1.0, meter.read_j()) == pytest.approx(2.5)
    assert meter.between(262143.0, 1.0) == pytest.approx(262143.32885 - 262143.0 + 1.0)  # the counter wrapped
    assert rapl_meter(str(tmp_path / "none")).reason.startswith("no RAPL package domain")


def test_nvml_without_a_gpu_gives_a_reason():
    meter = nvml_meter(0)
    assert meter.source is None and ("NVML" in meter.reason)


def test_a_meter_without_a_counter_measures_nothing():
    assert EnergyMeter(None, "no counter").between(None, 5.0) is None


def test_a_crashing_aoti_load_is_a_skip_with_the_signal(tmp_path, monkeypatch):
    torch = needs("torch", "torch")
    from inferperf.variants import compiled
    from inferperf.variants.prepared import RungUnavailable

    monkeypatch.setattr(compiled, "_AOTI_PROBE", "import ctypes; ctypes.string_at(0)")
    with pytest.raises(RungUnavailable, match=r"died by signal SIGSEGV .*Segmentation fault.*skipped rather than crash"):
        compiled.probe_aoti_load(tmp_path / "model.pt2", torch.zeros(1, 4), "cpu", tmp_path)


@pytest.mark.slow
def test_a_healthy_aoti_package_passes_the_probe_and_runs(tmp_path, monkeypatch):
    torch = needs("torch", "torch")
    from inferperf.variants.compiled import prepare_aoti
    from inferperf.variants.prepared import RungUnavailable

    monkeypatch.setenv("INFERPERF_AOTI_PROBE", "always")
    model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    example = torch.randn(2, 8)
    try:
        prepared = prepare_aoti(model, example, tmp_path, "cpu")
    except RungUnavailable as exc:
        pytest.skip(f"AOTInductor cannot compile here: {exc}")
    assert prepared.notes["aoti_probe"] is True
    torch.testing.assert_close(prepared.call(example), model(example))


_COMPILE_ONCE = """
import json, sys, torch
from pathlib import Path
from inferperf.variants.compiled import prepare_compile
model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU()).eval()
prepared = prepare_compile(model, torch.randn(2, 16), Path(sys.argv[1]), "cpu")
print(json.dumps({"compile": prepared.notes["compile"], "setup_s": prepared.setup_s}))
"""


@pytest.mark.slow
def test_a_compiled_rung_records_whether_inductors_cache_held_its_graph(tmp_path):
    """The same compile twice in fresh processes over one private cache: the first finds it empty
    and misses, the second finds files and hits (its set-up a fraction of the first's)."""
    needs("torch", "torch")
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _COMPILE_ONCE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
        # only a compile this machine cannot do (no C++ compiler: RungUnavailable) is a skip; any
        # other failure of the rung is the test's
        if done.returncode != 0 and "RungUnavailable: torch.compile failed" in done.stderr:
            pytest.skip(f"torch.compile cannot compile here: {done.stderr.strip().splitlines()[-1]}")
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cold, warm = runs[0]["compile"], runs[1]["compile"]
    assert cold["cache_files_before"] == 0 and cold["fx_graph_cache_misses"] >= 1 and cold["fx_graph_cache_hits"] == 0
    assert warm["cache_files_before"] > 0 and warm["fx_graph_cache_hits"] >= 1 and warm["fx_graph_cache_misses"] == 0
