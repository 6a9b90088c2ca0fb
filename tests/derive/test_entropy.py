"""Derivation.entropy: closed forms and their provenance, numeric where there is none.

Every closed form is compared, at a point, with a formula written here by hand
(mpmath, 30 digits); the method strings are the ones the module docstring of
``symfisher.derive.entropy`` promises.
"""

import mpmath
import pytest
import sympy as sp

from symfisher.derive.entropy import EXPFAM_ENTROPY, entropy
from symfisher.derive.expectation import FINITE, UNRESOLVED
from symfisher.families.catalog import family

mp = mpmath.mp
mp.dps = 30
E = mpmath.e
PI = mpmath.pi

#: family -> (expected method or None for "any integration method", point, H by hand)
HAND = {
    "normal": (
        EXPFAM_ENTROPY,
        (0.3, 1.7),
        lambda m, s: mpmath.log(s) + mpmath.log(2 * PI * E) / 2,
    ),
    "normal_var": (
        EXPFAM_ENTROPY,
        (0.3, 2.5),
        lambda m, v: mpmath.log(2 * PI * E * v) / 2,
    ),
    "exponential": (EXPFAM_ENTROPY, (2.5,), lambda lam: 1 - mpmath.log(lam)),
    "gamma": (
        EXPFAM_ENTROPY,
        (1.5, 0.5),
        lambda a, b: (
            a - mpmath.log(b) + mpmath.loggamma(a) + (1 - a) * mpmath.digamma(a)
        ),
    ),
    "beta": (
        EXPFAM_ENTROPY,
        (0.6, 1.7),
        lambda a, b: (
            mpmath.log(mpmath.beta(a, b))
            - (a - 1) * mpmath.digamma(a)
            - (b - 1) * mpmath.digamma(b)
            + (a + b - 2) * mpmath.digamma(a + b)
        ),
    ),
    "von_mises": (
        EXPFAM_ENTROPY,
        (0.4, 3.0),
        lambda m, k: (
            mpmath.log(2 * PI * mpmath.besseli(0, k))
            - k * mpmath.besseli(1, k) / mpmath.besseli(0, k)
        ),
    ),
    "laplace": (None, (0.3, 0.8), lambda m, b: 1 + mpmath.log(2 * b)),
    "uniform": (None, (3.5,), lambda t: mpmath.log(t)),
    "bernoulli": (
        FINITE,
        (0.2,),
        lambda p: -p * mpmath.log(p) - (1 - p) * mpmath.log(1 - p),
    ),
    "categorical_softmax": (
        FINITE,
        (0.1, -0.3, 2.0),
        lambda *z: (
            -mpmath.fsum(
                (mpmath.exp(v) / mpmath.fsum(mpmath.exp(w) for w in z))
                * mpmath.log(mpmath.exp(v) / mpmath.fsum(mpmath.exp(w) for w in z))
                for v in z
            )
        ),
    ),
    "full_gaussian": (
        "moments from the declared cumulant function K(t)",
        (0.1, 0.2, -0.4, 0.8, 0.6),
        lambda m1, m2, l11, l21, l22: 1 + mpmath.log(2 * PI) + l11 + l22,
    ),
}


@pytest.mark.parametrize("name", list(HAND))
def test_closed_form_entropy_and_provenance(name):
    method, point, hand = HAND[name]
    fam = family(name)
    ent = entropy(fam, 5.0)
    assert ent.expr is not None, ent.detail
    if method is None:
        assert ent.method.startswith("symbolic integration"), ent.method
    else:
        assert ent.method == method
    sub = {p: sp.Float(v, 30) for p, v in zip(fam.params, point, strict=True)}
    got = mpmath.mpf(str(sp.N(ent.expr.subs(sub), 30)))
    want = hand(*[mpmath.mpf(v) for v in point])
    assert abs(got - want) <= mpmath.mpf("1e-25") * max(1, abs(want))


@pytest.mark.parametrize("name", ["poisson", "poisson_log"])
def test_poisson_is_numeric_and_names_the_missing_term(name):
    ent = entropy(family(name), 5.0)
    assert ent.expr is None and ent.method == UNRESOLVED
    assert "E[log h(x)]" in ent.detail and "gamma(x + 1)" in ent.detail
    assert "numeric" in ent.detail


def test_derivation_entropy_at_numeric_and_closed():
    from symfisher.derive.derivation import derive

    d = derive("poisson")
    assert d.entropy is None and d.entropy_method == UNRESOLVED
    h = d.entropy_at({"lam": 3.0})
    assert h.provenance.startswith("numeric: mpmath quadrature")
    assert "E[log h(x)]" in h.provenance
    lam = mpmath.mpf(3)
    want = lam * (1 - mpmath.log(lam)) + mpmath.nsum(
        lambda k: (
            mpmath.exp(-lam) * lam**k / mpmath.factorial(k) * mpmath.loggamma(k + 1)
        ),
        [0, mpmath.inf],
    )
    assert float(h) == pytest.approx(float(want), rel=1e-12)
    u = derive("uniform")
    assert u.entropy == sp.log(u.family.params[0])
    hu = u.entropy_at([2.0])
    assert hu.provenance.startswith("closed form (symbolic integration")
    assert float(hu) == pytest.approx(float(mpmath.log(2)), rel=1e-15)
    assert u.summary()["entropy"] == "log(theta)"
