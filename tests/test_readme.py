"""README.md documents every record key and every command-line option."""

import re

from inferperf.analysis.schema import EXTRA_INFO_KEYS, MACHINE_KEYS, OPTIONAL_EXTRA_INFO_KEYS
from tests.conftest import REPO


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_every_extra_info_key_has_a_row_in_the_readme():
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", _readme(), flags=re.M))
    missing = [k for k in (*EXTRA_INFO_KEYS, *OPTIONAL_EXTRA_INFO_KEYS, *MACHINE_KEYS) if k not in documented]
    assert not missing, f"README.md has no table row for: {missing}"


def test_every_pytest_option_is_documented():
    conftest = (REPO / "conftest.py").read_text(encoding="utf-8")
    options = re.findall(r'addoption\(\s*"(--[a-z-]+)"', conftest)
    assert options, "no options found in conftest.py"
    readme = _readme()
    assert [o for o in options if f"`{o}" not in readme] == []
