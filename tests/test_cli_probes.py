"""Malformed and odd inputs, as a new user (or a broken disk) produces them: every command exits
0 or 2 with one line naming the file and field, quickly, never a traceback; no output lands on an
input; gates that compared nothing do not pass.

``python -m tests.test_cli_probes`` prints the probe table (kinds x commands, exit codes).
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferperf.cli import main
from tests.helpers import run_pytest

#: a command must answer within this many seconds, whatever the input
DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A real run of a few cases, written by the suite itself."""
    out = tmp_path_factory.mktemp("real") / "run.json"
    result = run_pytest(
        "perf_tests/test_null.py", "tests/perf_cases/faulty_cases.py", "--benchmark-only", "--device", "cpu",
        "--rounds", "12", f"--benchmark-json={out}", "-k", "null or ok_first or ok_last",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    return out


def call(*argv: str) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The probes: kinds of bad input x commands

def _benchmark(data: dict, change: Callable[[dict], Any]) -> dict:
    data = copy.deepcopy(data)
    change(data["benchmarks"][0])
    return data


def _stats(key: str, value: Any) -> Callable[[dict], Any]:
    return lambda data: _benchmark(data, lambda b: b["stats"].__setitem__(key, value))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON_PROBES: dict[str, Callable[[dict, str], str | bytes]] = {
    "truncated": lambda d, t: t[: len(t) // 2],
    "empty file": lambda d, t: "",
    "not JSON": lambda d, t: "{not json",
    "foreign JSON": lambda d, t: json.dumps({"results": []}),
    "JSON list": lambda d, t: "[1, 2]",
    "nested 100k deep": lambda d, t: _nested(100_000),
    "benchmarks nested deep": lambda d, t: json.dumps({**d, "benchmarks": []})[:-1] + ', "x": ' + _nested(50_000) + "}",
    "5000-digit integer": lambda d, t: t.replace('"rounds": 12', '"rounds": ' + "9" * 5000, 1),
    "invalid UTF-8": lambda d, t: t.encode()[:200] + b"\xff\xfe" + t.encode()[200:],
    "binary garbage": lambda d, t: bytes(range(256)) * 4,
    "benchmark not an object": lambda d, t: json.dumps({**d, "benchmarks": [1, "x"]}),
    "benchmarks not a list": lambda d, t: json.dumps({**d, "benchmarks": {"a": 1}}),
    "empty benchmarks": lambda d, t: json.dumps({**d, "benchmarks": []}),
    "extra_info null": lambda d, t: json.dumps(_benchmark(d, lambda b: b.__setitem__("extra_info", None))),
    "extra_info a list": lambda d, t: json.dumps(_benchmark(d, lambda b: b.__setitem__("extra_info", [1]))),
    "items_per_round a string": lambda d, t: json.dumps(_benchmark(d, lambda b: b["extra_info"].__setitem__("items_per_round", "8"))),
    "machine_info a list": lambda d, t: json.dumps({**d, "machine_info": [1, 2]}),
    "machine_info.inferperf a string": lambda d, t: json.dumps({**d, "machine_info": {**d["machine_info"], "inferperf": "x"}}),
    "commit_info a number": lambda d, t: json.dumps({**d, "commit_info": 5}),
    "datetime garbage": lambda d, t: json.dumps({**d, "datetime": "yesterday"}),
    "stats missing": lambda d, t: json.dumps(_benchmark(d, lambda b: b.pop("stats"))),
    "stats.median missing": lambda d, t: json.dumps(_benchmark(d, lambda b: b["stats"].pop("median"))),
    "median NaN": lambda d, t: json.dumps(_stats("median", float("nan"))(d)),
    "median Infinity": lambda d, t: json.dumps(_stats("median", float("inf"))(d)),
    "median zero": lambda d, t: json.dumps(_stats("median", 0)(d)),
    "median negative": lambda d, t: json.dumps(_stats("median", -1.0)(d)),
    "median a string": lambda d, t: json.dumps(_stats("median", "fast")(d)),
    "median outside min..max": lambda d, t: json.dumps(_stats("median", 1e9)(d)),
    "rounds zero": lambda d, t: json.dumps(_stats("rounds", 0)(d)),
    "rounds a float": lambda d, t: json.dumps(_stats("rounds", 2.5)(d)),
    "empty data": lambda d, t: json.dumps(_stats("data", [])(d)),
    "data with a string": lambda d, t: json.dumps(_stats("data", ["x"] * 12)(d)),
    "data shorter than rounds": lambda d, t: json.dumps(_benchmark(d, lambda b: b["stats"].__setitem__("data", b["stats"]["data"][:3]))),
    "duplicate case ids": lambda d, t: json.dumps({**d, "benchmarks": d["benchmarks"] + d["benchmarks"][:1]}),
    "newer schema": lambda d, t: json.dumps({**d, "machine_info": {**d["machine_info"], "inferperf": {**d["machine_info"]["inferperf"], "schema": 99}}}),
    "schema a string": lambda d, t: json.dumps({**d, "machine_info": {**d["machine_info"], "inferperf": {**d["machine_info"]["inferperf"], "schema": "1"}}}),
    "case_id a number": lambda d, t: json.dumps(_benchmark(d, lambda b: b["extra_info"].__setitem__("case_id", 7))),
    "name a list": lambda d, t: json.dumps(_benchmark(d, lambda b: b.__setitem__("fullname", [1]))),
    "contention a string": lambda d, t: json.dumps(_benchmark(d, lambda b: b["extra_info"].__setitem__("contention", "busy"))),
}

class ProbeNotApplicable(Exception):
    """The good run lacks what a probe mutates (e.g. raw ``data`` without --benchmark-save-data)."""


SPECIAL_PROBES = ("FIFO named x.json", "folder named x.json", "odd file name (newline, undecodable byte)")


def _make_probe(kind: str, good: Path, where: Path) -> Path:
    """The bad input ``kind`` at ``where`` (a path ending in .json)."""
    if kind == "FIFO named x.json":
        os.mkfifo(where)
    elif kind == "folder named x.json":
        where.mkdir()
    elif kind == "odd file name (newline, undecodable byte)":
        where = where.with_name(os.fsdecode(b"odd\n\xffname.json"))
        shutil.copy(good, where)
    else:
        text = good.read_text()
        content = JSON_PROBES[kind](json.loads(text), text)
        if _same_json(content, text):
            # a mutation that found nothing to change would probe the good file: say so
            raise ProbeNotApplicable(f"{kind}: {good} has nothing this probe changes")
        where.write_bytes(content if isinstance(content, bytes) else content.encode())
    return where


def _same_json(content: str | bytes, text: str) -> bool:
    if content == text:
        return True
    try:
        return bool(json.loads(content) == json.loads(text))
    except (ValueError, RecursionError):  # not JSON, or nested past the parser: surely changed
        return False


COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    # (good run, bad input, a scratch folder) -> argv
    "compare": lambda good, bad, tmp: ["compare", str(good), str(bad)],
    "compare (folder)": lambda good, bad, tmp: ["compare", str(bad.parent)],
    "history": lambda good, bad, tmp: ["history", str(bad.parent.parent.parent), "--no-plots"],
    "export": lambda good, bad, tmp: ["export", str(bad), "--format", "bencher"],
    "validate": lambda good, bad, tmp: ["validate", str(good), str(bad)],
    "report": lambda good, bad, tmp: ["report", str(bad)],
}


def run_probe(kind: str, command: str, good: Path, tmp: Path) -> tuple[int, str, str, float]:
    store = tmp / "store" / "box" / "p"
    store.mkdir(parents=True)
    shutil.copy(good, store / "0001_a.json")
    shutil.copy(good, store / "0002_b.json")
    bad = _make_probe(kind, good, store / "0003_x.json")
    return call(*COMMANDS[command](good, bad, tmp))


ALL_KINDS = [*JSON_PROBES, *SPECIAL_PROBES]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_command_answers_bad_input_with_exit_0_or_2_and_one_line(kind, real_run, tmp_path):
    for command in COMMANDS:
        scratch = tmp_path / command.replace(" ", "_").replace("(", "").replace(")", "")
        code, out, err, seconds = run_probe(kind, command, real_run, scratch)
        where = f"{command} on {kind}: exit {code}\n{err}"
        assert code in (0, 2), where
        assert "Traceback" not in err and "internal error" not in err, where
        assert seconds < DEADLINE_S, where
        if code == 2 and command in ("compare", "export", "report"):
            assert len(err.strip().splitlines()) == 1, where
            assert "0003_x" in err or "odd" in err, where  # names the file
        if command == "validate" and kind != "odd file name (newline, undecodable byte)":
            assert code == 2 and "0003_x" in err, where  # validate rejects all the loader rejects


def test_validate_reports_every_problem_of_every_file(real_run, tmp_path):
    text = real_run.read_text()
    data = json.loads(text)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_stats("median", 0)(data)))
    second.write_text(json.dumps({**data, "benchmarks": data["benchmarks"] + data["benchmarks"][:1]}))
    code, _, err, _ = call("validate", str(first), str(real_run), str(second))
    assert code == 2
    assert "a.json" in err and "stats.median is 0" in err and "b.json" in err and "duplicate case id" in err
    assert "2 problem(s) in 2 of 3 file(s)" in err


def test_odd_file_names_are_shown_escaped_and_reports_still_written(real_run, tmp_path):
    odd = tmp_path / os.fsdecode(b"night\n\xff.json")
    shutil.copy(real_run, odd)
    html = tmp_path / "r.html"
    code, out, err, _ = call("compare", str(real_run), str(odd), "--html", str(html), "--markdown", str(tmp_path / "r.md"))
    assert code == 0, err
    assert html.read_text().startswith("<!doctype html>")
    broken = tmp_path / os.fsdecode(b"broken\n\xff.json")
    broken.write_text("{")
    code, _, err, _ = call("compare", str(real_run), str(broken))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "broken\\n\\xff.json" in err


# --------------------------------------------------------------------------------------------
# Options and gates


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "{a}", "{a}", "--confidence", "2"], "--confidence"),
        (["compare", "{a}", "{a}", "--confidence", "nan"], "--confidence"),
        (["compare", "{a}", "{a}", "--alpha", "0"], "--alpha"),
        (["compare", "{a}", "{a}", "--min-change", "-1"], "--min-change"),
        (["compare", "{a}", "{a}", "--min-change", "inf"], "--min-change"),
        (["history", "{store}", "--penalty", "nan"], "--penalty"),
        (["history", "{store}", "--penalty", "inf"], "--penalty"),
        (["history", "{store}", "--penalty", "0"], "--penalty"),
        (["history", "{store}", "--confidence", "1"], "--confidence"),
        (["detection-power", "--trials", "0"], "--trials"),
        (["detection-power", "--rounds", "1"], "--rounds"),
        (["detection-power", "--slowdowns", "nan"], "--slowdowns"),
        (["history", "{store}", "--output", "{stored}"], "is one of the inputs"),
        (["history", "{store}", "--output", "{file}"], "not a folder"),
        (["compare", "{a}", "{b}", "--json", "{a}"], "is one of the inputs"),
        (["compare", "{a}", "{b}", "--html", "{store}"], "not a regular file"),
        (["export", "{a}", "--format", "bencher", "-o", "{a}"], "is one of the inputs"),
        (["history", "{store}", "--markdown", "{stored}"], "is one of the inputs"),
        (["compare", "{a}", "{b}", "--fail-on-regression", "-k", "typo_that_matches_nothing"], "matches -k"),
        (["compare", "{a}", "{empty}", "--fail-on-regression"], "nothing was compared"),
        (["compare", "{a}", "{other}", "--fail-on-regression"], "nothing was compared"),
        (["compare", "{a}", "{b}", "-k", "cpu and"], "unexpected end"),
    ],
)
def test_bad_options_and_void_gates_exit_2_with_one_line(argv, message, real_run, tmp_path):
    data = json.loads(real_run.read_text())
    store = tmp_path / "store" / "box" / "p"
    store.mkdir(parents=True)
    stored = store / "0001_a.json"
    shutil.copy(real_run, stored)
    shutil.copy(real_run, store / "0002_b.json")
    b = tmp_path / "b.json"
    shutil.copy(real_run, b)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**data, "benchmarks": []}))
    other = tmp_path / "other.json"
    renamed = copy.deepcopy(data)
    for bench in renamed["benchmarks"]:
        bench["extra_info"]["case_id"] = "other/" + bench["extra_info"]["case_id"].split("/", 1)[1]
    other.write_text(json.dumps(renamed))
    plain_file = tmp_path / "a-file.txt"
    plain_file.write_text("x")
    names = {"a": real_run, "b": b, "store": tmp_path / "store", "stored": stored, "empty": empty, "other": other, "file": plain_file}
    before = {p: p.read_bytes() for p in (real_run, stored, b)}
    code, out, err, _ = call(*[arg.format(**{k: str(v) for k, v in names.items()}) for arg in argv])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert all(p.read_bytes() == content for p, content in before.items())  # no input was touched


def test_an_internal_error_is_exit_3_with_one_line_and_a_traceback_only_with_debug(real_run, monkeypatch):
    import inferperf.commands.export as export  # the export workflow, which calls export_run

    monkeypatch.setattr(export, "export_run", lambda run, fmt: 1 / 0)
    code, _, err, _ = call("export", str(real_run), "--format", "bencher")
    assert code == 3 and len(err.strip().splitlines()) == 1 and "internal error: ZeroDivisionError" in err
    code, _, err, _ = call("--debug", "export", str(real_run), "--format", "bencher")
    assert code == 3 and "Traceback" in err
    code, _, err, _ = call("export", str(real_run), "--format", "bencher", "--debug")
    assert code == 3 and "Traceback" in err


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    from inferperf.analysis import output

    target = tmp_path / "report.md"
    target.write_text("yesterday's report")
    monkeypatch.setattr(output.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(output.OutputError, match="No space left"):
        output.Outputs().write_text(target, "today's report", "--markdown")
    assert target.read_text() == "yesterday's report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary file left behind


def test_machine_folders_with_similar_names_get_their_own_pages(real_run, tmp_path):
    for machine in ("gpu box", "gpu_box"):
        folder = tmp_path / "store" / machine / "p"
        folder.mkdir(parents=True)
        shutil.copy(real_run, folder / "0001_a.json")
        shutil.copy(real_run, folder / "0002_b.json")
        shutil.copy(real_run, folder / "0003_c.json")
    code, _, err, _ = call("history", str(tmp_path / "store"), "--output", str(tmp_path / "site"))
    assert code == 0, err
    pages = sorted(p.name for p in (tmp_path / "site").glob("*.html") if p.name != "index.html")
    assert len(pages) == 2 and pages[0] != pages[1]


# --------------------------------------------------------------------------------------------
# Random mutations of a real run


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:3]):
            found += _paths(inner, (*prefix, index))
    return found


REPLACEMENTS = [None, "", "x", -1, 0, 1.5, float("nan"), float("inf"), 10**30, [], {}, [1, "a"], {"a": None}, True]


@st.composite
def mutated(draw, text: str) -> bytes:
    data = json.loads(text)
    how = draw(st.sampled_from(["drop", "retype", "truncate", "corrupt"]))
    if how in ("drop", "retype"):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if how == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.sampled_from(REPLACEMENTS))
        return json.dumps(data).encode()
    raw = text.encode()
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    position = draw(st.integers(0, len(raw) - 1))
    return raw[:position] + bytes([draw(st.integers(0, 255))]) + raw[position + 1 :]


@pytest.mark.slow
def test_random_mutations_of_a_real_run_never_crash_a_command(real_run):
    text = real_run.read_text()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(mutated(text))
    def check(content: bytes) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "store" / "box" / "p"
            folder.mkdir(parents=True)
            shutil.copy(real_run, folder / "0001_a.json")
            shutil.copy(real_run, folder / "0002_b.json")
            bad = folder / "0003_x.json"
            bad.write_bytes(content)
            for command, argv in COMMANDS.items():
                code, _, err, seconds = call(*argv(real_run, bad, Path(scratch)))
                assert code in (0, 2) and "Traceback" not in err, f"{command}: exit {code}\n{err}"
                assert seconds < DEADLINE_S, f"{command} took {seconds:.1f} s"

    check()


def probe_table(good: Path) -> str:
    """The probe matrix as Markdown: exit code per kind and command."""
    lines = ["| kind | " + " | ".join(COMMANDS) + " |", "|---|" + "---|" * len(COMMANDS)]
    for kind in ALL_KINDS:
        cells = []
        for command in COMMANDS:
            with tempfile.TemporaryDirectory() as scratch:
                try:
                    code, _, err, _ = run_probe(kind, command, good, Path(scratch))
                except ProbeNotApplicable:
                    cells.append("n/a")
                    continue
            cells.append(str(code) + ("" if "Traceback" not in err else " (traceback!)"))
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(probe_table(Path(sys.argv[1])))
