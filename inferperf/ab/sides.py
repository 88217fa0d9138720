"""The two sides of an A/B experiment: what each runs (a checkout or a git ref) and how."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

from inferperf.text import shown

SideName = Literal["base", "candidate"]
SIDES: tuple[SideName, SideName] = ("base", "candidate")


class AbError(ValueError):
    """A side or an option that cannot be used: one line, exit 2."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison and how to run it."""

    name: SideName
    spec: str
    directory: Path
    python: str
    env: Mapping[str, str]
    args: tuple[str, ...]
    #: a worktree made for a git ref (removed afterwards)
    worktree: bool = False
    commit: str | None = None

    def command(self, pytest_args: Sequence[str], out: Path) -> list[str]:
        return [
            self.python, "-m", "pytest", *pytest_args, "--benchmark-only", "--benchmark-save-data",
            f"--benchmark-json={out}", "-p", "no:cacheprovider", *self.args,
        ]

    def environment(self) -> dict[str, str]:
        # the side's own checkout comes first on the path, whatever inferperf is installed
        path = os.pathsep.join(p for p in (str(self.directory), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, **self.env, "PYTHONPATH": path}


def parse_env(pairs: Sequence[str], option: str) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise AbError(f"{option}: expected KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AbError(f"git {' '.join(args)}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return result.stdout.strip()


def resolve_side(
    name: SideName, spec: str, *, python: str | None, env: Mapping[str, str], args: str | None, repo: Path, scratch: Path
) -> Side:
    """A directory as it is, or a git ref checked out (detached) into a temporary worktree."""
    interpreter = python or sys.executable
    if python is not None and not Path(python).exists():
        raise AbError(f"--{name}-python: {python} does not exist")
    try:
        extra = tuple(shlex.split(args or ""))
    except ValueError as exc:
        raise AbError(f"--{name}-args: {exc}") from None
    candidate = Path(spec)
    if candidate.is_dir():
        return Side(name, spec, candidate.resolve(), interpreter, dict(env), extra)
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], capture_output=True, text=True)
    commit = found.stdout.strip() if found.returncode == 0 and spec else ""
    if not commit:
        raise AbError(f"--{name}: {spec!r} is neither a directory nor a git ref of {shown(repo)}")
    directory = scratch / name
    _git(repo, "worktree", "add", "--detach", "--force", str(directory), commit)
    return Side(name, spec, directory, interpreter, dict(env), extra, worktree=True, commit=commit)


def remove_side(side: Side, repo: Path) -> None:
    if side.worktree:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(side.directory)], capture_output=True)
