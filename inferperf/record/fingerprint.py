"""Which machine a run was made on, from its ``machine_info``: the facts that change every timing.

A hosted CI runner keeps its name while its hardware changes from night to night; a timing that
moves with the hardware is not a regression of the code. The fingerprint holds the CPU model and
the ISA flags that choose kernels, the cores this process could use, the GPUs (names and count)
and the torch and CUDA versions; history starts a new segment, marked "machine changed", where
it changes inside one machine folder, and never calls that a regression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from inferperf.record.values import as_list, as_mapping

#: CPU flags (as /proc/cpuinfo and py-cpuinfo spell them) that change which kernels run fast
ISA_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    # Arm
    "asimd",
    "asimdhp",
    "fphp",
    "asimddp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)

#: the facts of the fingerprint, in the order they are shown
FACTS: tuple[str, ...] = ("cpu", "isa", "cores", "gpus", "torch", "cuda")


@dataclass(frozen=True)
class MachineIdentity:
    """The fingerprint's facts (name -> value as text) and a short digest of them."""

    facts: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        text = "\n".join(f"{name}={value}" for name, value in self.facts)
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()

    def as_dict(self) -> dict[str, str]:
        return dict(self.facts)

    def differences(self, newer: "MachineIdentity") -> list[str]:
        """``"cpu: A -> B"`` for every fact that differs from ``newer``."""
        old, new = self.as_dict(), newer.as_dict()
        return [f"{name}: {old.get(name) or '?'} -> {new.get(name) or '?'}" for name in FACTS if old.get(name) != new.get(name)]


def machine_identity(machine_info: Mapping[str, Any]) -> MachineIdentity:
    """The fingerprint of the machine that wrote ``machine_info`` (inferperf's or plain pytest-benchmark's)."""
    ours = as_mapping(machine_info.get("inferperf"))
    cpu = as_mapping(ours.get("cpu"))
    pb_cpu = as_mapping(machine_info.get("cpu"))
    model = cpu.get("model") or pb_cpu.get("brand_raw") or machine_info.get("processor") or ""
    if isinstance(cpu.get("isa"), list):
        isa = sorted(str(flag) for flag in cpu["isa"])
    else:
        flags = as_list(pb_cpu.get("flags"))
        isa = sorted(flag for flag in ISA_FLAGS if flag in flags)
    cores = cpu.get("affinity_cores") or cpu.get("logical_cores") or pb_cpu.get("count") or ""
    gpus = [str(as_mapping(g).get("name")) for g in as_list(ours.get("gpus")) if isinstance(g, Mapping)]
    gpu_text = f"{len(gpus)}x {', '.join(sorted(set(gpus)))}" if gpus else "none"
    versions = as_mapping(ours.get("versions"))
    build = as_mapping(ours.get("torch_build"))
    facts = (
        ("cpu", str(model)),
        ("isa", " ".join(isa)),
        ("cores", str(cores)),
        ("gpus", gpu_text),
        ("torch", str(versions.get("torch") or "")),
        ("cuda", str(build.get("torch_cuda") or "") if gpus else ""),
    )
    return MachineIdentity(facts)
