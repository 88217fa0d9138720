"""Energy counters read around the timed rounds: NVML on NVIDIA GPUs, RAPL on CPUs.

- CUDA: NVML's total-energy counter of the GPU (``nvmlDeviceGetTotalEnergyConsumption``,
  millijoules since the driver loaded; Volta and newer), from the optional ``nvidia-ml-py``.
- CPU: the RAPL package domains under ``/sys/class/powercap/intel-rapl:N/energy_uj`` (Intel, and
  AMD Zen on Linux >= 5.8), microjoules, wrapping at ``max_energy_range_uj``. Since Linux 5.10 the
  files are readable by root only; inside most VMs they do not exist.

Both count the whole device or package: other work on it is included (``contention`` says
whether there was any). Where no counter is readable the reading is None and ``reason`` says why.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Callable

from inferperf.cases import Device

RAPL_ROOT = "/sys/class/powercap"


@dataclass
class EnergyMeter:
    """Reads a device's cumulative energy in joules (None when it cannot)."""

    source: str | None
    reason: str | None
    read_j: Callable[[], float | None] = field(default=lambda: None)
    #: the counter's wrap-around in joules (RAPL), None when it does not wrap
    wrap_j: float | None = None

    def record(self) -> dict[str, object]:
        return {"source": self.source, "reason": self.reason}

    def between(self, before: float | None, after: float | None) -> float | None:
        if before is None or after is None:
            return None
        used = after - before
        if used < 0 and self.wrap_j:
            used += self.wrap_j
        return used if used >= 0 else None


def _read_counter(domain: str, name: str) -> int:
    """One integer file of a RAPL domain (``energy_uj``, ``max_energy_range_uj``)."""
    with open(os.path.join(domain, name), encoding="ascii") as fh:
        return int(fh.read())


def _rapl_packages(root: str = RAPL_ROOT) -> list[str]:
    """The package-level RAPL domains (``intel-rapl:0``, ``intel-rapl:1``…), not their sub-domains."""
    found = []
    for domain in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
        if domain.count(":") != 1:
            continue  # intel-rapl:0:0 is a sub-domain (core, dram) counted inside the package
        try:
            with open(os.path.join(domain, "name"), encoding="ascii") as fh:
                if not fh.read().startswith("package"):
                    continue
        except OSError:
            continue
        found.append(domain)
    return found


def rapl_meter(root: str = RAPL_ROOT) -> EnergyMeter:
    """The CPU packages' RAPL counters, or a meter whose reason says why there is none."""
    packages = _rapl_packages(root)
    if not packages:
        return EnergyMeter(None, f"no RAPL package domain under {root} (a VM, or not an Intel/AMD CPU with powercap)")
    readable = []
    wrap = 0.0
    for domain in packages:
        try:
            _read_counter(domain, "energy_uj")
            wrap += _read_counter(domain, "max_energy_range_uj") / 1e6
            readable.append(domain)
        except (OSError, ValueError):
            continue
    if not readable:
        return EnergyMeter(None, f"RAPL counters under {root} are not readable by this user (root only since Linux 5.10)")

    def read() -> float | None:
        try:
            return sum(_read_counter(domain, "energy_uj") for domain in readable) / 1e6
        except (OSError, ValueError):
            return None

    return EnergyMeter("rapl", None, read, wrap_j=wrap if len(readable) == 1 else None)


def nvml_meter(index: int, uuid: str | None = None) -> EnergyMeter:
    """The GPU's NVML total-energy counter, or a meter whose reason says why there is none.

    NVML numbers GPUs without ``CUDA_VISIBLE_DEVICES``; the GPU is found by its UUID when torch knows it.
    """
    try:
        import pynvml
    except ImportError:
        return EnergyMeter(None, "NVML bindings missing: install the [nvml] extra (nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported and friends: a reason, not a crash
        return EnergyMeter(None, f"NVML total energy not available on GPU {index}: {exc}")

    def read() -> float | None:
        try:
            return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3
        except Exception:  # noqa: BLE001
            return None

    return EnergyMeter("nvml", None, read)


_METERS: dict[Device, EnergyMeter] = {}


def meter_for(device: Device) -> EnergyMeter:
    """The device's meter, found once per process."""
    if device not in _METERS:
        if device == "cuda":
            import torch

            index = torch.cuda.current_device()
            raw = getattr(torch.cuda.get_device_properties(index), "uuid", None)
            uuid = None if raw is None else (str(raw) if str(raw).startswith("GPU-") else f"GPU-{raw}")
            _METERS[device] = nvml_meter(index, uuid)
        else:
            _METERS[device] = rapl_meter()
    return _METERS[device]
