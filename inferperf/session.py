"""What inferperf adds to pytest-benchmark's JSON: ``machine_info["inferperf"]`` and clean params.

The top level of the JSON stays pytest-benchmark's, so ``pytest-benchmark compare``,
github-action-benchmark and Bencher keep reading it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from inferperf.cases import Case, Device
from inferperf.energy import meter_for
from inferperf.hardware import (
    Calibration,
    calibrate,
    cpu_info,
    cuda_available,
    gpu_info,
    library_versions,
    torch_available,
    torch_build_info,
    torchao_pairing_record,
)
from inferperf.record.keys import SCHEMA_VERSION
from inferperf.settings import Settings


@dataclass
class SessionRecord:
    """State collected during one pytest session: calibrations and the cases that did not run or failed."""

    settings: Settings
    calibrations: dict[Device, Calibration] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    #: each case ran in a fresh child process (``--isolate``)
    isolated: bool = False

    def calibration(self, device: Device) -> Calibration | None:
        """The device's calibration, measured on first request (a few seconds) and then reused."""
        if device not in self.calibrations:
            if not torch_available() or (device == "cuda" and not cuda_available()):
                return None
            self.calibrations[device] = calibrate(device)
        return self.calibrations[device]

    def note_skip(self, case_id: str, reason: str) -> None:
        entry = {"case_id": case_id, "reason": reason}
        if entry not in self.skipped:
            self.skipped.append(entry)

    def note_failure(self, case_id: str, reason: str) -> None:
        entry = {"case_id": case_id, "reason": reason}
        if entry not in self.failed:
            self.failed.append(entry)


SESSION_KEY = pytest.StashKey[SessionRecord]()


def record_of(config: pytest.Config) -> SessionRecord:
    """The session's record, stashed on the config by the root conftest's ``pytest_configure``."""
    return config.stash[SESSION_KEY]


def machine_record(session: SessionRecord) -> dict[str, Any]:
    """``machine_info["inferperf"]``: versions, hardware, threads and calibration."""
    settings = session.settings
    devices: list[Device] = ["cpu", "cuda"] if cuda_available() else ["cpu"]
    calibration = {}
    for device in devices:
        if device in settings.devices:
            measured = session.calibration(device)
            if measured is not None:
                calibration[device] = measured.as_record()
    return {
        "schema": SCHEMA_VERSION,
        "tier": settings.tier,
        "threads_option": settings.threads,
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "weights_dir": str(settings.weights_dir) if settings.weights_dir else None,
        "versions": library_versions(),
        "torch_build": torch_build_info(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "calibration": calibration,
        "skipped": list(session.skipped),
        "failed": list(session.failed),
        "isolated": session.isolated,
        "torchao": torchao_pairing_record(),
        "energy": {device: meter_for(device).record() for device in devices if device in settings.devices},
        "price_per_hour_usd": settings.price_per_hour,
        "load_generator": _load_generator_ceiling(),
    }


def _load_generator_ceiling() -> dict[str, Any] | None:
    """``inferperf client-ceiling``'s last result on this machine, if it was ever measured."""
    from inferperf.serving.runners import cached_ceiling

    found = cached_ceiling()
    return {k: v for k, v in found.items() if k != "steps"} if found else None


def jsonable_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parametrize values as JSON: a Case becomes its record instead of an unreadable repr."""
    if params is None:
        return None
    return {
        name: value.record() if isinstance(value, Case) else _plain(value) for name, value in params.items()
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
