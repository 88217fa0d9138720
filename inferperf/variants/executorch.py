"""ExecuTorch with the XNNPACK backend: export, lower, save a .pte, run it in the ExecuTorch runtime."""

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

#: why the [all] environment has no ExecuTorch (docs/setup.md, "Environment notes")
NOT_INSTALLED = (
    "executorch is not installed: it needs numpy>=2, which conflicts with the [serve] extra (numpy<2); "
    "run this rung in its own environment: pip install -e '.[torch,executorch]'"
)


def prepare_executorch(model: nn.Module, example: torch.Tensor, workdir: Path, device: str) -> Prepared:
    clock, warned = Stopwatch(), list[str]()
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except ImportError as exc:
        raise RungUnavailable(f"{NOT_INSTALLED} ({exc})") from None
    path = workdir / "model.pte"
    with captured_warnings(warned):
        try:
            exported = torch.export.export(model, (example,))
            program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
            path.write_bytes(program.buffer)
            method = Runtime.get().load_program(str(path)).load_method("forward")
        except Exception as exc:
            raise RungUnavailable(f"ExecuTorch lowering failed: {error_line(exc)}") from None

    def call(batch: torch.Tensor) -> torch.Tensor:
        return method.execute([batch.contiguous()])[0]

    return Prepared(call, file_bytes(path), clock.seconds(), warnings=warned, notes={"executorch_backend": "xnnpack"})
