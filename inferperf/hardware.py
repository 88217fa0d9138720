"""Device discovery, synchronisation, calibration of peak FLOP/s and bandwidth, machine info.

Everything that imports torch does so inside functions, so that importing this module (for
example while pytest collects cases) costs nothing when torch is absent.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Callable

from inferperf.cases import Device
from inferperf.record.fingerprint import ISA_FLAGS

#: Distributions whose versions go into the record when installed (dist name -> record key).
TRACKED_DISTRIBUTIONS: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torchvision",
    "transformers": "transformers",
    "timm": "timm",
    "torchao": "torchao",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "executorch": "executorch",
    "tensorflow": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "keras": "keras",
    "nvidia-dali-cuda120": "dali",
    "nvidia-dali-cuda130": "dali",
    "nvidia-pytriton": "pytriton",
    "tritonclient": "tritonclient",
    "numpy": "numpy",
    "pillow": "pillow",
    "scikit-image": "scikit-image",
    "pytest-benchmark": "pytest-benchmark",
}

@cache
def torch_available() -> bool:
    from inferperf.extras import _module_present

    return _module_present("torch")


@cache
def cuda_available() -> bool:
    if not torch_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


def device_unavailable_reason(device: Device) -> str | None:
    """None when the device can run torch work, else the reason a user can act on."""
    if device == "cpu":
        return None
    if not torch_available():
        return "no CUDA device: torch is not installed (install the [torch] extra)"
    if not cuda_available():
        return "no CUDA device visible to torch (torch.cuda.is_available() is False)"
    return None


def sync(device: Device) -> None:
    """Wait for queued device work; every timed call ends with this."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for dist, key in TRACKED_DISTRIBUTIONS.items():
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def torch_build_info() -> dict[str, object]:
    """CUDA/cuDNN versions torch was built with and the intra-op threads it uses."""
    if not torch_available():
        return {}
    import torch

    info: dict[str, object] = {
        "torch_cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "quantized_engines": list(torch.backends.quantized.supported_engines),
    }
    if torch.cuda.is_available():
        info["cudnn"] = torch.backends.cudnn.version()
    return info


@cache
def _py_cpuinfo() -> dict[str, object]:
    """py-cpuinfo's view of the CPU (what pytest-benchmark records too), once per process."""
    try:
        import cpuinfo

        return dict(cpuinfo.get_cpu_info())
    except Exception:  # noqa: BLE001 - an exotic platform: the record says what is known
        return {}


def cpu_info() -> dict[str, object]:
    """Model, cores, and the ISA flags that choose kernels, from py-cpuinfo (any OS, x86 and Arm)."""
    info = _py_cpuinfo()
    flags = info.get("flags") if isinstance(info.get("flags"), list) else []
    return {
        "model": str(info.get("brand_raw") or platform.processor() or platform.machine()),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "isa": sorted(f for f in ISA_FLAGS if f in flags),  # type: ignore[operator]
    }


def gpu_info() -> list[dict[str, object]]:
    if not cuda_available():
        return []
    import torch

    driver = _nvidia_driver_version()
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "memory_bytes": int(props.total_memory),
                "compute_capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "driver": driver,
            }
        )
    return gpus


def _nvidia_driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


# --------------------------------------------------------------------------------------------
# Calibration: what this device can do at best, so results can be judged against its own limits.


@dataclass(frozen=True)
class Calibration:
    """Measured peaks of one device. FLOP/s keyed by dtype; int8 counts integer multiply-adds x2."""

    device: Device
    peak_flops_per_s: dict[str, float] = field(default_factory=dict)
    mem_bandwidth_bytes_per_s: float | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def peak_for(self, dtype: str) -> float | None:
        """The peak that bounds a run in ``dtype`` (quantized int8 runs are judged against int8)."""
        # weight-only int8/int4 dequantize into fp32 arithmetic: fp32's peak bounds them
        key = {"qint8": "int8", "int8dyn": "int8", "fp16": "fp16", "bf16": "bf16", "int8wo": "fp32", "int4wo": "fp32"}.get(dtype, dtype)
        return self.peak_flops_per_s.get(key)

    def as_record(self) -> dict[str, object]:
        record = asdict(self)
        record["notes"] = list(self.notes)
        return record

    @classmethod
    def from_record(cls, record: dict[str, object]) -> "Calibration":
        """The calibration ``as_record`` wrote (how an isolated child takes its parent's)."""
        from inferperf.record.values import as_list, as_mapping

        bandwidth = record.get("mem_bandwidth_bytes_per_s")
        seconds = record.get("seconds")
        return cls(
            device="cuda" if record.get("device") == "cuda" else "cpu",
            peak_flops_per_s={str(k): float(v) for k, v in as_mapping(record.get("peak_flops_per_s")).items()},
            mem_bandwidth_bytes_per_s=float(bandwidth) if isinstance(bandwidth, (int, float)) else None,
            seconds=float(seconds) if isinstance(seconds, (int, float)) else 0.0,
            notes=tuple(str(n) for n in as_list(record.get("notes"))),
        )


def _best_time(fn: Callable[[], object], device: Device, repeats: int, max_s: float = 1.0) -> float:
    """Best of ``repeats`` timed calls after one warm-up, stopping early once ``max_s`` is spent:
    an op with no fast kernel on this hardware (int8 matmul without VNNI, say) takes a second
    per call, and the calibration must stay a few seconds."""
    fn()
    sync(device)
    best = float("inf")
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if spent >= max_s:
            break
    return best


#: ISA flags that give a CPU native arithmetic in a dtype (Arm's fp16 is ``asimdhp``/``fphp``; plain
#: ``asimd`` is every AArch64 core and says nothing about fp16)
NATIVE_DTYPE_FLAGS: dict[str, frozenset[str]] = {
    "bf16": frozenset({"avx512_bf16", "amx_bf16", "bf16"}),
    "fp16": frozenset({"avx512_fp16", "amx_fp16", "asimdhp", "fphp"}),
}


def _cpu_has_native(dtype: str) -> bool:
    isa = set(cpu_info()["isa"])  # type: ignore[call-overload]
    needed = NATIVE_DTYPE_FLAGS.get(dtype)
    return needed is None or bool(isa & needed)


#: int8 tensor cores do at least this many times the multiply-adds of bf16 ones on every NVIDIA GPU
#: since Turing (2x on Ampere and Hopper); an int8 peak under bf16's means no such kernel ran
INT8_OVER_BF16_EXPECTED = 1.0


def _int8_peak(n: int, device: Device, repeats: int) -> tuple[float, str]:
    """Peak int8 multiply-adds x2 per second of ``torch._int_mm`` and the right-hand layout that gave it.

    cuBLASLt's int8 tensor-core kernels want the right-hand matrix column-major (``w.t()`` of a
    contiguous (N, K) weight, as torchao lays it out); a row-major one can land on a far slower
    fallback kernel. On CUDA both layouts are timed and the faster counts; on the CPU oneDNN takes
    either, and one layout keeps the calibration within its few seconds."""
    import torch

    a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=device)
    layouts = {"row-major": torch.randint(-128, 127, (n, n), dtype=torch.int8, device=device)}
    if device == "cuda":
        layouts["column-major"] = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=device).t()
    seconds = {name: _best_time(functools.partial(torch._int_mm, a8, b), device, repeats) for name, b in layouts.items()}
    fastest = min(seconds, key=seconds.__getitem__)
    return 2 * n**3 / seconds[fastest], fastest


def int8_shortfall_note(peaks: dict[str, float], layout: str, device: Device) -> str | None:
    """Why a GPU's measured int8 peak is below what its tensor cores do, when it is; else None.

    A GPU whose int8 matmul runs slower than its bf16 one is not running an int8 tensor-core
    kernel: the torch/cuBLASLt pair dispatches a generic one for this GPU (seen on an H100 with
    torch 2.11 + CUDA 13: 127 TOP/s int8 against 767 TFLOP/s bf16). Quantized rungs there are
    judged against the measured figure, which is the rate they can actually reach."""
    if device != "cuda" or "int8" not in peaks or "bf16" not in peaks:
        return None
    ratio = peaks["int8"] / peaks["bf16"]
    if ratio >= INT8_OVER_BF16_EXPECTED:
        return None
    return (
        f"int8: torch._int_mm reached {peaks['int8'] / 1e12:.0f} TOP/s ({layout} right-hand side, the "
        f"faster layout), {ratio:.2f}x the bf16 rate where int8 tensor cores give 2x: this torch/CUDA "
        "build runs no int8 tensor-core kernel for this GPU, so int8 rungs cannot beat bf16 here"
    )


def calibrate(device: Device, *, matmul_n: int | None = None, repeats: int = 5) -> Calibration:
    """Measure peak matmul FLOP/s per dtype and copy bandwidth on ``device`` (a few seconds)."""
    import torch

    started = time.perf_counter()
    n = matmul_n or (1024 if device == "cpu" else 8192)
    notes: list[str] = []
    peaks: dict[str, float] = {}
    float_dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    with torch.inference_mode():
        for name, dtype in float_dtypes.items():
            if device == "cpu" and not _cpu_has_native(name):
                notes.append(f"{name}: no native CPU support (ISA), not calibrated")
                continue
            a = torch.randn(n, n, dtype=dtype, device=device)
            b = torch.randn(n, n, dtype=dtype, device=device)
            peaks[name] = 2 * n**3 / _best_time(lambda: a @ b, device, repeats)
        try:
            peaks["int8"], layout = _int8_peak(n, device, repeats)
        except (RuntimeError, AttributeError) as exc:
            notes.append(f"int8: torch._int_mm unavailable ({type(exc).__name__})")
        else:
            note = int8_shortfall_note(peaks, layout, device)
            if note:
                notes.append(note)
        elements = (64 if device == "cpu" else 256) * 2**20
        src = torch.empty(elements, dtype=torch.float32, device=device).fill_(1.0)
        dst = torch.empty_like(src)
        # a copy reads and writes every byte once
        bandwidth = 2 * src.numel() * 4 / _best_time(lambda: dst.copy_(src), device, repeats)
    return Calibration(
        device=device,
        peak_flops_per_s=peaks,
        mem_bandwidth_bytes_per_s=bandwidth,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Out of memory: recorded as a skip with the reason, so a session at large batches goes on.

_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "resource exhausted")
_OOM_TYPES = ("OutOfMemoryError", "ResourceExhaustedError", "MemoryError")


def is_out_of_memory(exc: BaseException) -> bool:
    if type(exc).__name__ in _OOM_TYPES or isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def release_memory() -> None:
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# torch <-> torchao: torchao's compiled kernels are built against one torch; with another they are
# skipped (or fail to load) and its quantized paths fall back to slow Python/ATen compositions.


def torchao_pairing_record() -> dict[str, object] | None:
    """For ``machine_info``: the inspected pairing if a torchao case ran, else the versions alone.

    Inspecting means importing torchao (seconds); a session without a torchao case need not pay it.
    """
    if torchao_pairing.cache_info().currsize:
        return torchao_pairing()
    versions = library_versions()
    if "torchao" not in versions:
        return None
    return {"torch": versions.get("torch"), "torchao": versions["torchao"], "extensions_loaded": None,
            "reason": "not inspected: no torchao case ran in this session"}


@cache
def torchao_pairing() -> dict[str, object] | None:
    """The installed torchao beside this torch: versions, whether its compiled kernels loaded, and why not."""
    try:
        torchao_version = importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not torch_available():
        return None
    import logging
    import sys

    import torch

    if "torchao" not in sys.modules and "tensorflow" in sys.modules and "triton" not in sys.modules:
        # torchao imports triton, and triton after TensorFlow aborts the process (LLVM options)
        return {"torch": torch.__version__, "torchao": torchao_version, "extensions_loaded": None,
                "reason": "not inspected: TensorFlow was imported first in this process"}
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(level=logging.DEBUG)
    logger = logging.getLogger("torchao")
    logger.addHandler(handler)
    try:
        import torchao  # noqa: F401 - its import decides whether the kernels load
    except Exception as exc:  # noqa: BLE001 - a broken install is a finding, not a crash
        return {"torch": torch.__version__, "torchao": torchao_version, "extensions_loaded": False, "reason": f"import failed: {exc}"}
    finally:
        logger.removeHandler(handler)
    from pathlib import Path

    import torchao as ao

    shipped = list(Path(ao.__file__).parent.glob("_C*.so"))
    ops = [name for name in torch._C._dispatch_get_all_op_names() if name.startswith("torchao::")]
    skipped = next((m for m in messages if "Skipping import of cpp extensions" in m or "Failed to load" in m), None)
    loaded = bool(ops) or not shipped
    return {
        "torch": torch.__version__,
        "torchao": torchao_version,
        "extensions_shipped": len(shipped),
        "ops_registered": len(ops),
        "extensions_loaded": loaded and skipped is None,
        "reason": skipped or ("" if loaded else "no torchao:: operator registered"),
    }
