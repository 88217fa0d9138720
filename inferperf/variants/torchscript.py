"""TorchScript rungs of the seed's ladder: script, dynamic-int8 + script, mobile, lite interpreter."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inferperf.text import error_line
from inferperf.variants.prepared import (
    Prepared,
    RungUnavailable,
    Stopwatch,
    captured_warnings,
    file_bytes,
)
from inferperf.variants.quantize import quantize_linear_dynamic


def _scripted(model: nn.Module, path: Path, warned: list[str]) -> torch.jit.ScriptModule:
    """Script, save and load back (the artefact a deployment ships), in eval mode."""
    with captured_warnings(warned):
        try:
            scripted = torch.jit.script(model)
        except Exception as exc:  # TorchScript frontend errors have many types
            raise RungUnavailable(f"torch.jit.script failed: {error_line(exc)}") from None
        torch.jit.save(scripted, str(path))
        loaded = torch.jit.load(str(path))
    return loaded.eval()


def prepare_script(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    path = workdir / "scripted.pt"
    scripted = _scripted(model, path, warned)
    return Prepared(scripted, file_bytes(path), clock.seconds(), warnings=warned)


def _quantized_scripted(model: nn.Module, workdir: Path, warned: list[str]) -> tuple[torch.jit.ScriptModule, Path]:
    path = workdir / "scripted_qdyn.pt"
    with captured_warnings(warned):
        quantized = quantize_linear_dynamic(model, engine="x86")
    return _scripted(quantized, path, warned), path


def prepare_qdyn_script(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    scripted, path = _quantized_scripted(model, workdir, warned)
    return Prepared(scripted, file_bytes(path), clock.seconds(), warnings=warned, notes={"quantized_engine": "x86"})


def xnnpack_enabled() -> bool:
    probe = getattr(torch._C, "_is_xnnpack_enabled", None)
    return bool(probe()) if probe is not None else False


def _mobile_optimized(model: nn.Module, workdir: Path, warned: list[str]):
    scripted, _ = _quantized_scripted(model, workdir, warned)
    try:
        from torch.utils.mobile_optimizer import optimize_for_mobile
    except ImportError as exc:
        raise RungUnavailable(f"torch.utils.mobile_optimizer is not available: {exc}") from None
    with captured_warnings(warned):
        try:
            return optimize_for_mobile(scripted)
        except Exception as exc:  # e.g. "XNNPACK is not enabled" on builds without it
            reason = str(exc).strip()
            if "XNNPACK is not enabled" in reason or not xnnpack_enabled():
                reason = "Mobile optimization only available with XNNPACK; this torch build has XNNPACK disabled"
            raise RungUnavailable(f"optimize_for_mobile failed: {reason.splitlines()[-1][:240]}") from None


def prepare_mobile(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    optimized = _mobile_optimized(model, workdir, warned)
    path = workdir / "mobile.pt"
    torch.jit.save(optimized, str(path))
    loaded = torch.jit.load(str(path)).eval()
    return Prepared(loaded, file_bytes(path), clock.seconds(), warnings=warned)


def prepare_lite(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    """Saved for the lite interpreter and reloaded. The seed saved its mobile-optimized model;
    where optimize_for_mobile is unavailable the dynamic-int8 scripted model is used (recorded)."""
    clock, warned = Stopwatch(), list[str]()
    try:
        source, source_name = _mobile_optimized(model, workdir, warned), "qdyn_mobile"
    except RungUnavailable:
        source, source_name = _quantized_scripted(model, workdir, warned)[0], "qdyn_script"
    path = workdir / "lite.ptl"
    with captured_warnings(warned):
        try:
            source._save_for_lite_interpreter(str(path))
            from torch.jit.mobile import _load_for_lite_interpreter

            lite = _load_for_lite_interpreter(str(path))
        except Exception as exc:
            raise RungUnavailable(f"lite interpreter save/load failed: {error_line(exc)}") from None
    return Prepared(lite, file_bytes(path), clock.seconds(), warnings=warned, notes={"lite_of": source_name})
