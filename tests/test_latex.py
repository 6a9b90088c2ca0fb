"""The formula LaTeX printer: ψ, ψ₁, log Γ, λ, primes; tidy logarithms."""

import pytest
import sympy as sp

from symfisher.latex import latex, tidy

a = sp.Symbol("a", positive=True)
b = sp.Symbol("b", positive=True)
bq = sp.Symbol("b'", positive=True)
r = sp.Symbol("r", real=True)


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (sp.polygamma(0, a), r"\psi\left(a\right)"),
        (sp.digamma(a), r"\psi\left(a\right)"),
        (sp.polygamma(1, a), r"\psi_1\left(a\right)"),
        (sp.polygamma(2, a), r"\psi^{(2)}\left(a\right)"),
        (sp.loggamma(a + b), r"\log\Gamma\left(a + b\right)"),
        (sp.Symbol("mu'"), r"\mu'"),
        (sp.Symbol("lam"), r"\lambda"),
        (sp.Symbol("lam'"), r"\lambda'"),
        (sp.Symbol("sigma_2"), r"\sigma_{2}"),
    ],
)
def test_names_a_reader_knows(expr, want):
    assert latex(expr) == want


def test_powers_of_special_functions_keep_their_argument():
    assert latex(sp.polygamma(1, a) ** 2) == r"\psi_1^{2}\left(a\right)"
    assert latex(sp.loggamma(a) ** 2) == r"\left(\log\Gamma\left(a\right)\right)^{2}"


def test_no_sympy_function_names_leak():
    expr = sp.polygamma(1, a) - sp.loggamma(b) + sp.polygamma(0, a + b)
    out = latex(expr)
    assert "polygamma" not in out and "loggamma" not in out


def test_tidy_splits_logs_of_positive_products_only():
    kl = sp.log(b**a * bq ** (-a))
    assert sp.simplify(tidy(kl) - (a * sp.log(b) - a * sp.log(bq))) == 0
    assert "log" in latex(tidy(kl)) and r"b^{a}" not in latex(tidy(kl))
    # for a real (possibly negative) base the split is not an identity: kept
    assert tidy(sp.log(r**2 * a)) != 2 * sp.log(r) + sp.log(a)


def test_tidy_keeps_the_value():
    expr = sp.log(b**a / bq**2) + sp.polygamma(1, a)
    at = {a: 1.7, b: 0.3, bq: 2.9}
    assert abs(float(tidy(expr).subs(at)) - float(expr.subs(at))) < 1e-12


def test_tidy_works_entrywise_on_matrices():
    m = sp.Matrix([[sp.log(a * b), 0], [0, sp.log(b**2)]])
    assert tidy(m) == sp.Matrix([[sp.log(a) + sp.log(b), 0], [0, 2 * sp.log(b)]])


def test_tidy_leaves_what_is_not_an_expression():
    domain = sp.Interval.open(0, sp.oo)
    assert tidy(domain) is domain
    assert latex(tidy(domain)) == sp.latex(domain)
