"""Where checkpoints come from: a user's real weights (``--weights``) or a random-init save.

Either way the model is then loaded through its real loading path (``from_pretrained(dir)``,
``tf.saved_model.load``), so the code that runs is the code a real checkpoint runs.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Literal, MutableMapping, TypeVar

from inferperf.measure import ModelFacts

WeightsSource = Literal["random-init", "user"]
#: written into a saved random-init checkpoint: how long building it took (seconds)
BUILD_RECORD = ".inferperf-build-s"


@dataclass(frozen=True)
class Checkpoint:
    key: str
    directory: Path
    source: WeightsSource
    #: seconds spent building and saving the random-init checkpoint (0 for user weights)
    build_s: float


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to call, with where it came from and what is known about it."""

    checkpoint: Checkpoint
    model: Any
    facts: ModelFacts

    def record(self) -> dict[str, object]:
        """``extra_info`` keys naming the weights the numbers were measured with."""
        return {"weights": self.checkpoint.source, "checkpoint_build_s": self.checkpoint.build_s}


def quiet_transformers() -> None:
    """No hub access at run time, and no progress bars per load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


class CheckpointStore:
    """Saved checkpoints for the session, built once per key."""

    def __init__(self, root: Path, weights_dir: Path | None = None) -> None:
        self.root = root
        self.weights_dir = weights_dir
        self._saved: dict[str, Checkpoint] = {}
        self._lock = threading.Lock()

    def get(self, key: str, save_random: Callable[[Path], None]) -> Checkpoint:
        with self._lock:
            if key not in self._saved:
                self._saved[key] = self._make(key, save_random)
            return self._saved[key]

    def _make(self, key: str, save_random: Callable[[Path], None]) -> Checkpoint:
        if self.weights_dir is not None and (self.weights_dir / key).is_dir():
            return Checkpoint(key, self.weights_dir / key, "user", 0.0)
        directory = self.root / key
        built = directory / BUILD_RECORD
        if built.is_file():  # saved earlier in this session (by another isolated child)
            return Checkpoint(key, directory, "random-init", float(built.read_text(encoding="ascii")))
        started = time.perf_counter()
        partial = self.root / f".{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # left by a child that died while saving
        partial.mkdir(parents=True)
        save_random(partial)
        build_s = time.perf_counter() - started
        (partial / BUILD_RECORD).write_text(repr(build_s), encoding="ascii")
        partial.rename(directory)
        return Checkpoint(key, directory, "random-init", build_s)


def directory_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.name != BUILD_RECORD)


T = TypeVar("T")


def cached(cache: MutableMapping[Hashable, Any], key: Hashable, build: Callable[[], T]) -> T:
    """``cache[key]``, built by ``build()`` the first time: each model is loaded once per module."""
    if key not in cache:
        cache[key] = build()
    return cache[key]
