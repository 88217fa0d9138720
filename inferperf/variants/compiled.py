"""Today's methods: torch.compile, low precision, torch.export + AOTInductor, torchao int8/float8.

Compiled rungs record what the compiler did (``extra_info.compile``: graphs, graph breaks and
their reasons, recompilations), so a slow compiled rung says why. On CUDA, AOTInductor's package
is first loaded and run in a probe process: ``aoti_load_package`` segfaulted on an H100 (torch 2.11,
CUDA 13) and took the whole session with it; a crash in the probe is a skip with the reason.
"""

from __future__ import annotations

import copy
import os
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from inferperf.text import error_line
from inferperf.variants.prepared import (
    Prepared,
    RungUnavailable,
    Stopwatch,
    captured_warnings,
    file_bytes,
    state_dict_bytes,
)
from inferperf.variants.quantize import torchao_float8, torchao_int8

#: where the AOTInductor load probe runs: "cuda" (where it crashed), "always" or "never"
AOTI_PROBE_ENV = "INFERPERF_AOTI_PROBE"
AOTI_PROBE_TIMEOUT_S = 300.0

_AOTI_PROBE = """
import sys, torch
from torch._inductor import aoti_load_package
runner = aoti_load_package(sys.argv[1])
example = torch.load(sys.argv[2]).to(sys.argv[3])
with torch.inference_mode():
    runner(example)
if sys.argv[3] == "cuda":
    torch.cuda.synchronize()
print("aoti probe ok")
"""


def compile_counters() -> dict[str, object]:
    """What torch._dynamo counted since the last reset: graphs, graph breaks (with reasons),
    recompilations, and Inductor's graph-cache hits and misses."""
    from torch._dynamo.utils import counters

    breaks: Mapping[str, int] = counters.get("graph_break", {})
    stats: Mapping[str, int] = counters.get("stats", {})
    frames: Mapping[str, int] = counters.get("frames", {})
    inductor: Mapping[str, int] = counters.get("inductor", {})
    return {
        "graphs": int(stats.get("unique_graphs", 0)),
        "graph_breaks": int(sum(breaks.values())),
        "break_reasons": [str(reason)[:160] for reason, _ in sorted(breaks.items(), key=lambda kv: -kv[1])[:3]],
        "recompiles": int(sum(counters.get("recompiles", {}).values())),
        # dynamo's "stats.calls_captured" counts operations put in graphs, not frames
        "frames_compiled": int(frames.get("ok", 0)),
        # Inductor's graph cache: a hit loads compiled code instead of generating and building it
        "fx_graph_cache_hits": int(inductor.get("fxgraph_cache_hit", 0)),
        "fx_graph_cache_misses": int(inductor.get("fxgraph_cache_miss", 0)),
    }


def inductor_cache_files() -> int | None:
    """Files in Inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, by default
    ``/tmp/torchinductor_<user>``) now; None where it cannot be read.

    A compile's time can depend on it more than on anything the rung does: timm ``deit_tiny``'s
    ``ao_int8_compile`` set-up at batch 8 took 54.5 s with its graph not yet in the cache and 5.3 s
    with it (a graph-cache hit), on a 2-core Zen 4. AOTInductor's packages count no hits and took
    16–26 s either way there, but reuse the cache's compiled headers. So a compiled rung records
    what the cache held before it, and ``torch.compile`` rungs their graph-cache hits and misses.
    """
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        root = cache_dir()
    except Exception:  # a torch without the helper: the state is unknown, not empty
        return None
    if not os.path.isdir(root):
        return 0
    try:
        return sum(len(files) for _, _, files in os.walk(root))
    except OSError:
        return None


@contextmanager
def counting_compiles(notes: dict[str, object]) -> Iterator[None]:
    """Record in ``notes["compile"]`` what torch._dynamo counted inside the block (its first calls),
    with the cache's files before it and the graph-cache hits and misses inside it."""
    from torch._dynamo.utils import counters

    files_before = inductor_cache_files()
    counters.clear()
    yield
    notes["compile"] = {**compile_counters(), "cache_files_before": files_before}


def _compile(model: nn.Module, example: torch.Tensor, warned: list[str], notes: dict[str, object]):
    """Compile and run once: compilation happens at the first call, so it is set-up, not timing."""
    with captured_warnings(warned), counting_compiles(notes):
        compiled = torch.compile(model)
        try:
            with torch.inference_mode():
                compiled(example)
        except Exception as exc:  # inductor needs a working C++ compiler on CPU, Triton on CUDA
            raise RungUnavailable(f"torch.compile failed: {error_line(exc)}") from None
    return compiled


def prepare_compile(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned, notes = Stopwatch(), list[str](), dict[str, object]()
    compiled = _compile(model, example, warned, notes)
    return Prepared(compiled, state_dict_bytes(model, workdir / "state.pt"), clock.seconds(), warnings=warned, notes=notes)


def _low_precision(dtype: torch.dtype):
    def prepare(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
        clock = Stopwatch()
        converted = copy.deepcopy(model).to(dtype)
        return Prepared(converted, state_dict_bytes(converted, workdir / "state.pt"), clock.seconds(), input_dtype=dtype)

    return prepare


prepare_bf16 = _low_precision(torch.bfloat16)
prepare_fp16 = _low_precision(torch.float16)


def probe_aoti_load(package: Path, example: torch.Tensor, device: str, workdir: Path) -> None:
    """Load and run the package in a child process first; ``RungUnavailable`` if that child crashes.

    ``aoti_load_package`` runs native code that can segfault; in a probe it costs a process, in
    this session it would cost every result not yet written.
    """
    from inferperf import children
    from inferperf.isolation import crash_site

    example_file = workdir / "probe-example.pt"
    torch.save(example.detach().cpu(), example_file)
    log = workdir / "aoti-probe.log"
    ended = children.run([sys.executable, "-X", "faulthandler", "-c", _AOTI_PROBE, str(package), str(example_file), device], log,
                         timeout_s=AOTI_PROBE_TIMEOUT_S)
    if ended.timed_out:
        raise RungUnavailable(f"aoti_load_package did not return within {AOTI_PROBE_TIMEOUT_S:g} s in a probe process")
    if ended.returncode == 0:
        return
    lines = children.last_lines(log, 60)
    how = ended.describe(AOTI_PROBE_TIMEOUT_S)
    site = crash_site(lines) or (lines[-1] if lines else "")
    raise RungUnavailable(
        f"aoti_load_package {how} in a probe process (torch {torch.__version__}, CUDA {torch.version.cuda}): "
        f"{site}; skipped rather than crash the session"
    )


def _probe_wanted(device: str) -> bool:
    setting = os.environ.get(AOTI_PROBE_ENV, "cuda")
    return setting == "always" or (setting == "cuda" and device == "cuda")


def prepare_aoti(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    """torch.export, then AOTInductor compiles the graph into a package loaded without Python tracing."""
    cache_files_before = inductor_cache_files()
    clock, warned = Stopwatch(), list[str]()
    try:
        from torch._inductor import aoti_compile_and_package, aoti_load_package
    except ImportError as exc:
        raise RungUnavailable(f"AOTInductor is not available in this torch: {exc}") from None
    with captured_warnings(warned):
        try:
            exported = torch.export.export(model, (example,))
            package = aoti_compile_and_package(exported, package_path=str(workdir / "model.pt2"))
        except Exception as exc:
            raise RungUnavailable(f"torch.export + AOTInductor failed: {error_line(exc)}") from None
        probed = _probe_wanted(device)
        if probed:
            probe_aoti_load(Path(package), example, device, workdir)
        try:
            runner = aoti_load_package(package)
        except Exception as exc:
            raise RungUnavailable(f"aoti_load_package failed: {error_line(exc)}") from None
    notes = {"aoti_probe": probed, "compile": {"cache_files_before": cache_files_before}}
    return Prepared(runner, file_bytes(Path(package)), clock.seconds(), warnings=warned, notes=notes)


def _torchao_rung(
    model: nn.Module,
    workdir: Path,
    device: str,
    quantize: Callable[[nn.Module, str], tuple[nn.Module, str]],
    compile_with: torch.Tensor | None = None,
) -> Prepared:
    """A torchao rung: ``quantize`` (which names its configuration in ``quant_config``), compiled
    at ``compile_with``'s shape when given; the size is the quantized weights'."""
    clock, warned, notes = Stopwatch(), list[str](), dict[str, object]()
    with captured_warnings(warned):
        quantized, notes["quant_config"] = quantize(model, device)
    runner = quantized if compile_with is None else _compile(quantized, compile_with, warned, notes)
    return Prepared(runner, state_dict_bytes(quantized, workdir / "state.pt"), clock.seconds(), warnings=warned, notes=notes)


def prepare_ao_int8(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    return _torchao_rung(model, workdir, device, partial(torchao_int8, compiled=False))


def prepare_ao_int8_compile(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    return _torchao_rung(model, workdir, device, partial(torchao_int8, compiled=True), compile_with=example)


def prepare_ao_fp8(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    return _torchao_rung(model, workdir, device, torchao_float8)
