"""Generated source is tidied: unused pure assignments and imports dropped, formatted."""

import io
import tokenize
from pathlib import Path

import pytest

from symfisher.codegen.printer import KernelPrinter
from symfisher.codegen.source_format import (
    LINE_LENGTH,
    FormatError,
    drop_unused,
    tidy_source,
    unused_lines,
)

ROOT = Path(__file__).resolve().parents[2]

SRC = """import jax
import jax.numpy as jnp


def f(theta, x):
    theta = jnp.asarray(theta)
    a = theta[..., 0]
    b = theta[..., 1]
    x = _x(x, theta)
    d = theta.shape[-1] // 2
    m = theta[..., 0 * d : 1 * d]
    y = g(theta)
    z = -theta[..., h(0)]
    return a + 1
"""


def test_unused_pure_assignments_are_found():
    lines = SRC.splitlines()
    dropped = {lines[i - 1].strip() for i in unused_lines(SRC)}
    # b, x, m are never read (d only by m); calls other than _x may have an
    # effect, so y and z stay
    assert dropped == {
        "b = theta[..., 1]",
        "x = _x(x, theta)",
        "m = theta[..., 0 * d : 1 * d]",
    }
    out = drop_unused(SRC)
    assert "b = theta" not in out and "y = g(theta)" in out
    assert "d = theta" not in out  # unread once m is gone


def test_tidy_drops_unused_imports_and_formats():
    out = tidy_source(SRC.replace("return a + 1", "return a+1"))
    assert "import jax\n" not in out  # unused
    assert "import jax.numpy as jnp" in out
    assert "return a + 1" in out
    assert tidy_source(out) == out  # idempotent


def test_long_lines_are_wrapped():
    long = "def f(a):\n    return " + " + ".join(f"a * {i}" for i in range(40)) + "\n"
    out = tidy_source(long)
    assert max(len(ln) for ln in out.splitlines()) <= LINE_LENGTH


def test_a_syntax_error_is_a_format_error():
    with pytest.raises(FormatError, match="does not parse"):
        tidy_source("def f(:\n")


def test_printer_writes_one_jnp_prefix_and_plain_reciprocals():
    import sympy as sp

    b = sp.Symbol("b", positive=True)
    p = KernelPrinter()
    assert p.doprint(sp.log(b) + sp.exp(b)) == "jnp.exp(b) + jnp.log(b)"
    assert p.doprint(sp.Pow(b, -1, evaluate=False)) == "1/b"
    assert p.doprint(sp.Pow(b, -2, evaluate=False)) == "1/b**2"


def _string_lines(text: str) -> set[int]:
    """Lines holding part of a string literal (a formatter cannot wrap those)."""
    out: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            out.update(range(tok.start[0], tok.end[0] + 1))
    return out


@pytest.mark.parametrize(
    "path", sorted((ROOT / "generated").glob("*.py")), ids=lambda p: p.name
)
def test_generated_modules_read_like_the_package(path):
    text = path.read_text(encoding="utf-8")
    assert "jax.numpy." not in text
    assert "**(-1.0)" not in text
    strings = _string_lines(text)
    long = [
        ln
        for i, ln in enumerate(text.splitlines(), 1)
        if len(ln) > LINE_LENGTH and i not in strings and not ln.startswith("#")
    ]
    assert not long, long[:3]


def test_the_line_check_can_fail():
    text = "x = " + " + ".join(["a"] * 60) + "\ny = 'short'\n"
    assert 2 in _string_lines(text) and 1 not in _string_lines(text)
