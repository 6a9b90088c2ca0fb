"""README code blocks marked ``<!-- file: PATH -->`` are PATH, verbatim (and PATH runs as a test)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    return MARKED.findall((ROOT / "README.md").read_text())


def test_readme_shows_the_example_files():
    assert {p for p, _ in _blocks()} == {
        "tests/examples/test_squashed_gaussian_policy.py",
        "tests/examples/test_sb3_policy.py",
    }


@pytest.mark.parametrize("path, text", _blocks(), ids=lambda v: str(v)[:40])
def test_readme_block_is_the_file(path, text):
    assert (ROOT / path).read_text() == text, f"README's copy of {path} is stale"
