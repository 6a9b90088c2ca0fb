"""The log-moment table: every entry against 30-digit quadrature, and textbook values."""

import mpmath
import pytest
import sympy as sp

from symfisher.derive import logmoments as lm

y = sp.Symbol("y", real=True)
BY_NAME = {b.name: b for b in lm.BASES}
DPS = 30


def _quad(base, term, shape=None):
    """E[term] under the base by tanh-sinh at DPS digits."""
    logp = base.log_density(y, shape) if base.shaped else base.log_density(y)
    f = sp.lambdify([y], sp.exp(logp) * term, modules="mpmath")
    with mpmath.workdps(DPS + 10):
        return mpmath.quad(f, INTERVALS[base.name])


inf = mpmath.inf
#: where the density is above e^-1000 (beyond: double exponentials, no contribution)
INTERVALS = {
    "gamma": [0, 1, 10, inf],
    "Gumbel (maximum)": [-8, -2, 0, 5, 40, inf],
    "Gumbel (minimum)": [-inf, -40, -5, 0, 2, 8],
    "logistic": [-1200, -40, -5, 0, 5, 40, 1200],
}


def _check(base, term, shape=None):
    match = lm.Match(base, shape)
    got = lm.moment(match, term, y)
    assert got is not None, f"{base.name}: {term} not covered"
    assert not got.has(y)
    want = _quad(base, term, shape)
    _close(got, want, (base.name, term, got, want))


def _close(got, want, msg=None):
    with mpmath.workdps(DPS + 10):
        value = mpmath.mpf(str(sp.N(got, DPS + 5)))
        gap = abs(value - want)
        assert gap <= mpmath.mpf(10) ** -(DPS - 10) * max(1, abs(want)), msg


GAMMA_CASES = [
    (a, m, j)
    for a in (sp.Integer(1), sp.Rational(5, 2))
    for m in (sp.Integer(0), sp.Integer(1), sp.Integer(2), sp.Rational(-1, 3))
    for j in range(4)
]


@pytest.mark.parametrize("a, m, j", GAMMA_CASES, ids=str)
def test_gamma_entry_matches_quadrature(a, m, j):
    yp = sp.Symbol("y", positive=True)
    term = yp**m * sp.log(yp) ** j
    base = BY_NAME["gamma"]
    match = lm.Match(base, a)
    got = lm.moment(match, term, yp)
    f = sp.lambdify([yp], sp.exp(base.log_density(yp, a)) * term, modules="mpmath")
    with mpmath.workdps(DPS + 10):
        want = mpmath.quad(f, [0, 1, 10, mpmath.inf])
    _close(got, want, (a, m, j, got, want))


EXP_CASES = [
    ("Gumbel (maximum)", j, alpha)
    for j in range(4)
    for alpha in (0, -1, -2, sp.Rational(1, 2))
] + [
    ("Gumbel (minimum)", j, alpha)
    for j in range(4)
    for alpha in (0, 1, 2, sp.Rational(-1, 2))
]


@pytest.mark.parametrize("name, j, alpha", EXP_CASES, ids=str)
def test_gumbel_entries_match_quadrature(name, j, alpha):
    _check(BY_NAME[name], y**j * sp.exp(alpha * y))


LOGISTIC_CASES = [
    (j, alpha, beta)
    for j in range(3)
    for alpha, beta in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (sp.Rational(1, 2), 1)]
]


@pytest.mark.parametrize("j, alpha, beta", LOGISTIC_CASES, ids=str)
def test_logistic_entry_matches_quadrature(j, alpha, beta):
    _check(BY_NAME["logistic"], y**j * sp.exp(alpha * y) / (1 + sp.exp(y)) ** beta)


def test_logistic_terms_as_sympy_expands_them():
    """Denominators distributed over a coefficient, as after ``sp.expand``."""
    s = sp.Symbol("s", positive=True)
    term = 4 * y / (s**2 * sp.exp(2 * y) + 2 * s**2 * sp.exp(y) + s**2)
    base = BY_NAME["logistic"]
    got = lm.moment(lm.Match(base), term, y)
    assert got is not None and not got.has(y)
    _close(got.subs(s, 3), _quad(base, term.subs(s, 3)))


G, PI2 = sp.EulerGamma, sp.pi**2
TEXTBOOK = [
    # standard Gumbel: mean gamma, variance pi^2/6
    ("Gumbel (maximum)", y, G),
    ("Gumbel (maximum)", y**2, G**2 + PI2 / 6),
    ("Gumbel (maximum)", y * sp.exp(-y), G - 1),
    # Exp(1) = e^Y under the minimum Gumbel: E[log X] = -gamma, E[X log X] = 1 - gamma
    ("Gumbel (minimum)", y, -G),
    ("Gumbel (minimum)", y**2, G**2 + PI2 / 6),
    ("Gumbel (minimum)", y * sp.exp(y), 1 - G),
    ("Gumbel (minimum)", y**2 * sp.exp(y), (1 - G) ** 2 + PI2 / 6 - 1),
    # standard logistic: variance pi^2/3, E[tanh(Y/2)^2] = 1/3
    ("logistic", y**2, PI2 / 3),
    ("logistic", ((sp.exp(y) - 1) / (sp.exp(y) + 1)) ** 2, sp.Rational(1, 3)),
]


@pytest.mark.parametrize("name, term, value", TEXTBOOK, ids=str)
def test_textbook_values(name, term, value):
    term = sp.expand(term) if not term.has(sp.Pow) else term
    got = lm.moment(lm.Match(BY_NAME[name]), sp.expand(term), y)
    if got is None:  # (e^y - 1)^2/(e^y + 1)^2: expanded numerator, one denominator
        got = sum(
            lm.moment(lm.Match(BY_NAME[name]), t, y)
            for t in sp.Add.make_args(sp.expand(sp.apart(term, sp.exp(y))))
        )
    assert sp.simplify(got - value) == 0, (got, value)


def test_identify_recognises_equivalent_forms():
    assert lm.identify(y - 2 * sp.log(sp.exp(y) + 1), y, lm.REALS).base.name == (
        "logistic"
    )
    assert lm.identify(-y - sp.exp(-y), y, lm.REALS).base.name == "Gumbel (maximum)"
    assert lm.identify(y - sp.exp(y), y, lm.REALS).base.name == "Gumbel (minimum)"
    yp, k = sp.Symbol("y", positive=True), sp.Symbol("k", positive=True)
    m = lm.identify((k - 1) * sp.log(yp) - yp - sp.log(sp.gamma(k)), yp, lm.POSITIVE)
    assert m.base.name == "gamma" and m.shape == k


@pytest.mark.parametrize(
    "logp",
    [
        -y - 2 * sp.exp(-y),  # not normalised: not the Gumbel base
        -(y**2) / 2 - sp.log(2 * sp.pi) / 2,  # normal: not in the table
        -y - sp.exp(-y) + sp.log(2),  # off by a constant
    ],
    ids=str,
)
def test_identify_refuses_other_densities(logp):
    assert lm.identify(logp, y, lm.REALS) is None


def test_terms_outside_the_table_are_not_covered():
    gumbel = lm.Match(BY_NAME["Gumbel (maximum)"])
    assert lm.moment(gumbel, sp.log(1 + sp.exp(y)), y) is None
    assert lm.moment(gumbel, sp.exp(y), y) is None  # E[e^Y] = Gamma(0): diverges
    assert lm.moment(gumbel, sp.exp(y**2), y) is None
