"""Fixtures of the tests of the tooling (their shared helpers are in ``tests/helpers.py``)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_folder(tmp_path_factory):
    """History's index (and any other user cache) goes to a folder of this test session, not ~/.cache."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(autouse=True, scope="session")
def _one_calibration(tmp_path_factory):
    """The CPU's peaks measured once for the whole test session and handed, as ``--isolate`` hands
    its own to its children, to every pytest session the tests start: each would otherwise spend
    about 4 s of a 2-core machine measuring the same peaks again."""
    from inferperf.extras import has_extra
    from inferperf.isolation import CALIBRATION_ENV

    if not has_extra("torch") or CALIBRATION_ENV in os.environ:
        yield
        return
    import json

    from inferperf.hardware import calibrate

    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    path.write_text(json.dumps({"cpu": calibrate("cpu").as_record()}), encoding="utf-8")
    os.environ[CALIBRATION_ENV] = str(path)
    yield
    os.environ.pop(CALIBRATION_ENV, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist other workers share the CPUs, so a test that reads how busy they are, or
    times real processes against each other, cannot judge (and one that loads them with hogs would
    disturb the other workers' timing): those, marked ``alone``, skip saying how to run them —
    README's command runs them afterwards."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(reason="needs the CPUs to itself, so it runs without parallel workers: pytest -m alone")
    for item in items:
        if item.get_closest_marker("alone"):
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _lean_child_sessions():
    """Every pytest session the tests start (run_pytest, ab's and nightly's runs, --isolate's
    children) leaves hypothesis' plugin unloaded: it costs 0.85 s of start-up per session on a
    2-core VM, over a hundred sessions, and no benchmark case uses it. Under pytest-xdist
    (``pytest -n``) the children do not inherit the worker's ``PYTEST_XDIST_*`` variables:
    pytest-benchmark reads them and refuses ``--benchmark-only`` in a child that is no worker."""
    previous = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{previous or ''} -p no:hypothesispytest".strip()
    xdist_worker = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("PYTEST_XDIST_")}
    yield
    os.environ.update(xdist_worker)
    if previous is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = previous
