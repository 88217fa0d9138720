"""The package's import rules: no cycle anywhere, and each part imports only what its docstring allows.

Every ``import`` of every module of ``inferperf`` counts, inside functions too (a function-level
import is still a dependency, only a later one). The rules are the house's layers:

- ``record`` (the key registry, the run model, loading, validation) and ``metrics`` (metric
  definitions) import nothing of the rest: both sides depend on them;
- ``analysis`` reads runs and judges them: record, metrics, never the measuring side;
- the measuring side (``measure``, fixtures' helpers, ``serving``, ``variants``, ``models``, …)
  never imports ``analysis``, the commands or the ``ab`` runner.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "inferperf"

#: top-level part of inferperf -> the parts it may import (itself always allowed)
SHARED = {"inferperf", "text", "files"}
ALLOWED: dict[str, set[str]] = {
    "record": SHARED,
    "metrics": SHARED,
    "analysis": SHARED | {"record", "metrics"},
    "serving": SHARED | {"metrics", "children", "models"},
    "ab": SHARED | {"analysis", "record", "children"},
    "commands": SHARED | {"analysis", "record", "metrics", "ab", "journal", "serving"},
    "cli": SHARED | {"commands", "analysis", "record", "ab"},
}
#: what no part of the measuring side may import
MEASURING_NEVER = {"analysis", "commands", "cli", "ab"}
#: parts that are not the measuring side
NOT_MEASURING = set(ALLOWED) | {"__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the inferperf modules it imports (``from X import name`` counts X.name when it is a module)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "inferperf"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_what_it_may(part: str) -> None:
    allowed = ALLOWED[part] | {part}
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() if _part(module) == part
        for target in targets if _part(target) not in allowed
    )
    assert not wrong, wrong


def test_the_measuring_side_never_imports_analysis_commands_or_the_ab_runner() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() if _part(module) not in NOT_MEASURING
        for target in targets if _part(target) in MEASURING_NEVER
    )
    assert not wrong, wrong


def test_the_fixtures_and_benchmarks_never_import_analysis() -> None:
    """The fixtures and benchmark modules are the measuring side too (they live outside the package)."""
    wrong = []
    for path in [*(REPO / "fixtures").glob("*.py"), *(REPO / "perf_tests").glob("*.py"), REPO / "conftest.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("inferperf.analysis", "inferperf.commands", "inferperf.ab")):
                wrong.append(f"{path.relative_to(REPO)} imports {node.module}")
    assert not wrong, wrong


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80, f"{init.relative_to(REPO)}: no docstring saying what the package holds"
    for part in ("record", "metrics", "analysis", "serving"):
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "may import" in doc.lower(), f"inferperf/{part}/__init__.py does not say what it may import"
