"""Safe writes for every file the command line writes.

A file is written to a temporary file in the same folder, flushed to disk, then renamed over the
destination: a write that fails midway leaves the old file (or nothing), never a truncated one.
A destination that is one of the command's inputs is refused before anything is written, as is
one that exists and is not a regular file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from inferperf.files import atomic_write
from inferperf.text import shown


class OutputError(ValueError):
    """An output that cannot or must not be written; the message names the option and the path."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Outputs:
    """Writes a command's outputs, refusing to touch any of its ``inputs``."""

    def __init__(self, inputs: Iterable[Path] = ()) -> None:
        self._inputs: dict[tuple[int, int], Path] = {}
        self._input_paths: set[str] = set()
        for path in inputs:
            self.protect(path)

    def protect(self, path: Path) -> None:
        """Never write onto ``path`` (nor onto another name of the same file)."""
        identity = _identity(path)
        if identity is not None:
            self._inputs[identity] = path
        self._input_paths.add(os.path.abspath(path))

    def check(self, path: Path, option: str) -> None:
        """``OutputError`` when ``path`` may not be written: an input, or not a regular file."""
        identity = _identity(path)
        if os.path.abspath(path) in self._input_paths or (identity is not None and identity in self._inputs):
            raise OutputError(f"{option} {shown(path)}: is one of the inputs; refusing to overwrite it")
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OutputError(f"{option} {shown(path)}: cannot write ({exc.strerror or exc})") from None
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"{option} {shown(path)}: exists and is not a regular file")

    def check_folder(self, path: Path, option: str) -> None:
        """``OutputError`` when ``path`` cannot be an output folder: an input, or a file."""
        identity = _identity(path)
        if os.path.abspath(path) in self._input_paths or (identity is not None and identity in self._inputs):
            raise OutputError(f"{option} {shown(path)}: is one of the inputs; refusing to write there")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {shown(path)}: exists and is not a folder")

    def folder(self, path: Path, option: str) -> Path:
        """Create the output folder ``path`` (refusing a file or an input in its place)."""
        self.check_folder(path, option)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{option} {shown(path)}: cannot create the folder ({exc.strerror or exc})") from None
        return path

    def write_text(self, path: Path, text: str, option: str) -> Path:
        return self.write_bytes(path, text.encode("utf-8"), option)

    def write_bytes(self, path: Path, data: bytes, option: str) -> Path:
        self.check(path, option)
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise OutputError(f"{option} {shown(path)}: cannot write ({exc.strerror or exc})") from None
        return path
