"""Time-limited simplification: the constant shortcut never changes a result."""

from __future__ import annotations

import pytest
import sympy as sp

from symfisher.derive import simplify as S

x, y = sp.symbols("x y", real=True)
a = sp.Symbol("a", positive=True)
k = sp.Symbol("k", integer=True, positive=True)

#: an entry of the kind route 1 produces for the full Gaussian: a polynomial in
#: the parameters and exponentials of them that cancels to a constant
IDENTITY = (
    (x * sp.exp(-a) + y) ** 2 * sp.exp(2 * a)
    - x**2
    - 2 * x * y * sp.exp(a)
    - y**2 * sp.exp(2 * a)
    + sp.Rational(3, 2)
)

EXPRESSIONS = [
    IDENTITY,  # 3/2
    (x**2 - 1) / (x - 1) - x,  # 1
    sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1,  # 0, but not by cancel: simplify's way
    sp.exp(x) * sp.exp(-x) + (k**2 - k) / k - k,  # 0 with an integer symbol
    (x**2 - 1) / (x - 1),  # not constant: x + 1
    sp.log(a) + sp.log(2 * a),  # not constant
    sp.log(x - 5) - sp.log(x - 5),  # SymPy folds it to 0 itself
    sp.sqrt(x - 5) * 0 + x,  # complex at the probe points: no shortcut
    sp.exp(2 * a) * (1 - sp.exp(-2 * a)) - sp.exp(2 * a),  # -1
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_tidy_equals_simplify(expr):
    """The shortcut returns exactly what ``simplify`` returns, constant or not."""
    assert S._simplify(expr) == sp.simplify(expr)


@pytest.mark.parametrize(
    ("expr", "constant"),
    [
        (IDENTITY, True),
        ((x**2 - 1) / (x - 1) - x, True),
        (sp.exp(2 * a) * (1 - sp.exp(-2 * a)) - sp.exp(2 * a), True),
        ((k**2 - k) / k - k, True),
        ((x**2 - 1) / (x - 1), False),
        (x - y, False),  # equal at no probe point: symbols get different values
        (sp.log(a) + sp.log(2 * a), False),
        (sp.sqrt(x - 5), False),  # not real at the probes
    ],
    ids=str,
)
def test_looks_constant(expr, constant):
    assert S._looks_constant(expr) is constant


def test_identity_takes_the_shortcut(monkeypatch):
    """An entry equal to a number is settled by ``cancel``, without ``simplify``."""

    def refuse(expr, *args, **kwargs):
        raise AssertionError(f"simplify called on {expr}")

    monkeypatch.setattr(S.sp, "simplify", refuse)
    assert S._simplify(IDENTITY) == sp.Rational(3, 2)
    with pytest.raises(AssertionError, match="simplify called"):
        S._simplify((x**2 - 1) / (x - 1))
