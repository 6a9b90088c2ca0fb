"""Package-level properties: lazy imports, public API, lint."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import symfisher as sf

ROOT = Path(__file__).resolve().parents[1]


def test_import_symfisher_imports_neither_sympy_nor_jax():
    code = "import sys, symfisher; print('sympy' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", sf.__all__)
def test_every_public_name_resolves(name):
    assert getattr(sf, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sf.nope  # noqa: B018


def test_derive_and_families_callable_after_subpackage_import():
    import symfisher.derive.kl
    import symfisher.families.catalog  # noqa: F401

    assert "gamma" in sf.families()
    assert sf.derive("poisson").fisher is not None


def test_ruff_check_and_format_are_clean():
    # ruff comes with the test extra, next to this interpreter.
    ruff = str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        ruff = shutil.which("ruff")
    assert ruff, "ruff is not installed (pip install -e '.[test]')"
    paths = ["symfisher", "tests", "benchmarks", "generated"]
    check = subprocess.run(
        [ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


def test_every_subpackage_ships_in_the_wheel():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
            "setuptools"
        ]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "symfisher").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
