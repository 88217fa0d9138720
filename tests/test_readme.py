"""The documentation (README.md and the site in docs/) documents every record key (rendered from the
registry into docs/record.md), every option and every command; the site builds without a warning."""

import re

from inferperf.cli import build_parser
from inferperf.record.keys import TABLES, render_readme
from tests.helpers import REPO

RECORD_PAGE = REPO / "docs" / "record.md"


def _readme() -> str:
    """README.md and every page of the documentation site, as one text."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def test_the_key_tables_are_the_registry_rendered():
    text = RECORD_PAGE.read_text(encoding="utf-8")
    for marker in TABLES:
        assert f"<!-- {marker} -->" in text, f"docs/record.md has no <!-- {marker} --> table"
    assert render_readme(text) == text, "docs/record.md's key tables differ from inferperf/record/keys.py: run python -m inferperf.record.keys docs/record.md"


def test_every_pytest_option_is_documented():
    sources = [(REPO / "conftest.py").read_text(encoding="utf-8")]
    sources += [p.read_text(encoding="utf-8") for p in (REPO / "inferperf").rglob("*.py")]
    options = sorted({o for text in sources for o in re.findall(r'addoption\(\s*"(--[a-z-]+)"', text)})
    assert options, "no options found"
    readme = _readme()
    assert [o for o in options if f"`{o}" not in readme] == []


def test_every_command_and_its_options_are_documented():
    readme = _readme()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert f"inferperf {name}" in readme, f"the documentation does not show `inferperf {name}`"
        assert sub.description, f"inferperf {name} has no description"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--debug"):
                    assert f"`{flag}" in readme, f"the documentation does not document inferperf {name} {flag}"


def test_no_file_cites_a_missing_document():
    """Every Markdown file or docs/ path a source or document names exists in the repository."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    missing = []
    for name in files:
        if not name.endswith((".py", ".md", ".toml", ".ini", ".yml")) or not (REPO / name).is_file():
            continue
        text = (REPO / name).read_text(encoding="utf-8", errors="replace")
        for cited in re.findall(r"(?<![\w/.-])((?:docs/|results/)?[\w.-]+\.md|docs/[\w.-]+\.png)(?=[)#\s,`'\"]|$)", text):
            if cited.startswith(("http", "summary", "power", "comment", "<")) or cited in ("h.md",) or "/" not in cited and cited not in ("README.md",):
                continue
            if not (REPO / cited).exists():
                missing.append(f"{name} cites {cited}")
    assert not missing, missing
    seeds = "SEEDS" + ".md"  # the shared file the project once cited; its account is docs/experiments.md now
    assert not [f for f in files if f.endswith((".py", ".md")) and (REPO / f).is_file() and seeds in (REPO / f).read_text(errors="replace")]


def test_every_site_page_is_in_the_navigation_and_the_site_builds_without_a_warning(tmp_path):
    import shutil
    import subprocess
    import sys

    import pytest

    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md"))
    assert [p for p in pages if f": {p}" not in config] == [], "pages missing from mkdocs.yml's nav"
    if shutil.which("mkdocs") is None and subprocess.run([sys.executable, "-c", "import mkdocs"]).returncode != 0:
        pytest.skip("install the [docs] extra: pip install -e '.[docs]'")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    assert (tmp_path / "site" / "techniques" / "generation" / "index.html").is_file()
