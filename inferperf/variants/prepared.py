"""What every transformation returns, and the helpers they share (imports torch).

Each transformation returns a ``Prepared`` model: a callable from an input batch (on the
variant's device) to output logits, the size of its saved artefact and the set-up time, which
is never inside a timed loop.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from inferperf.text import first_line


class RungUnavailable(RuntimeError):
    """This torch (or this machine) cannot do the transformation; the message says exactly why."""


@dataclass
class Prepared:
    call: Callable[[torch.Tensor], Any]
    model_bytes: int | None
    setup_s: float
    #: dtype the input batch is converted to before ``call`` (bf16/fp16 variants)
    input_dtype: torch.dtype = torch.float32
    #: deprecation and user warnings raised while preparing, each once
    warnings: list[str] = field(default_factory=list)
    #: facts about the artefact worth recording (e.g. which model the lite file was made from)
    notes: dict[str, object] = field(default_factory=dict)


def file_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def state_dict_bytes(model: torch.nn.Module, path: Path) -> int:
    """Size of the model's state dict saved with ``torch.save`` (what a checkpoint takes on disk)."""
    torch.save(model.state_dict(), path)
    return path.stat().st_size


@contextmanager
def captured_warnings(into: list[str]) -> Iterator[None]:
    """Collect warnings raised inside, once each, instead of printing them (per round)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        message = f"{item.category.__name__}: {first_line(item.message)}"
        if message not in into:
            into.append(message)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.started
