"""Families of several variables from strings: the simplex and product supports."""

import dataclasses
import random

import mpmath
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import expectations_numeric, fisher_numeric
from symfisher.errors import DomainError, FamilyError
from symfisher.families.expfam_recognise import recognise_expfam
from symfisher.families.family import Family
from symfisher.families.points import random_point

DIRICHLET3 = (
    "loggamma(a1 + a2 + a3) - loggamma(a1) - loggamma(a2) - loggamma(a3)"
    " + (a1 - 1)*log(x1) + (a2 - 1)*log(x2) + (a3 - 1)*log(1 - x1 - x2)"
)
ALPHAS = {"a1": "positive", "a2": "positive", "a3": "positive"}


@pytest.fixture(scope="module")
def dirichlet():
    return sf.define_family(
        "dirichlet3",
        DIRICHLET3,
        variable=["x1", "x2"],
        params=ALPHAS,
        support="simplex",
    )


@pytest.fixture(scope="module")
def dirichlet_derivation(dirichlet):
    return sf.derive(dirichlet, use_cache=False)


def textbook_fisher(alphas):
    r""":math:`\mathrm{diag}(\psi_1(\alpha_i)) - \psi_1(\sum\alpha)\,\mathbf 1\mathbf 1^\top`."""
    total = sp.Add(*alphas)
    n = len(alphas)
    return sp.Matrix(
        n,
        n,
        lambda i, j: (
            (sp.polygamma(1, alphas[i]) if i == j else 0) - sp.polygamma(1, total)
        ),
    )


def textbook_mpmath(values):
    with mpmath.workdps(50):
        total = mpmath.fsum(values)
        return [
            [
                (mpmath.psi(1, a) if i == j else 0) - mpmath.psi(1, total)
                for j in range(len(values))
            ]
            for i, a in enumerate(values)
        ]


# -- the simplex ---------------------------------------------------------------
def test_simplex_support_is_the_open_simplex_in_k_minus_1_coordinates(dirichlet):
    x1, x2 = dirichlet.variables
    assert dirichlet.supports == (sp.Interval.open(0, 1), sp.Interval.open(0, 1 - x1))
    assert x1.is_positive and x2.is_positive
    assert not dirichlet.support_is_product
    inside = sp.Tuple(sp.Rational(1, 4), sp.Rational(1, 2))
    outside = sp.Tuple(sp.Rational(3, 4), sp.Rational(1, 2))
    assert dirichlet.support.contains(inside) is sp.true
    assert dirichlet.support.contains(outside) is sp.false


def test_dirichlet_exponential_family_form_is_recognised(dirichlet):
    ef = dirichlet.expfam
    assert ef is not None
    x1, x2 = dirichlet.variables
    a1, a2, a3 = dirichlet.params
    assert ef.eta == (a1, a2, a3)
    assert ef.T == (sp.log(x1), sp.log(x2), sp.log(1 - x1 - x2))
    n = ef.nat
    want_A = sum(sp.loggamma(v) for v in n) - sp.loggamma(sum(n))
    assert sp.simplify(ef.A - want_A) == 0


def test_dirichlet_fisher_is_the_textbook_formula(dirichlet, dirichlet_derivation):
    d = dirichlet_derivation
    print(f"Dirichlet(3) derived in {d.seconds:.2f} s")
    want = textbook_fisher(list(dirichlet.params))
    assert d.fisher is not None
    assert (d.fisher - want).applyfunc(sp.simplify) == sp.zeros(3, 3)
    assert len(d.routes) == 3
    for route, matrix in d.routes.items():
        assert matrix is not None, route
        assert (matrix - want).applyfunc(sp.simplify) == sp.zeros(3, 3), route
    assert set(d.agreement.values()) == {"proved"}
    assert d.mean_score_status == "proved"


def test_dirichlet_fisher_at_50_digit_random_points(dirichlet, dirichlet_derivation):
    rng = random.Random(12)
    for _ in range(3):
        point = random_point(dirichlet, rng)
        sub = {p: sp.Float(v, 50) for p, v in point.items()}
        got = dirichlet_derivation.fisher.evalf(50, subs=sub)
        want = textbook_mpmath([mpmath.mpf(v) for v in point.values()])
        with mpmath.workdps(50):
            for i in range(3):
                for j in range(3):
                    gap = abs(mpmath.mpf(str(got[i, j])) - want[i][j])
                    assert gap < mpmath.mpf("1e-45") * max(1, abs(want[i][j]))


def test_a_wrong_dirichlet_normaliser_is_not_the_textbook_fisher():
    # the comparison above can fail: without -loggamma(a3) the recognised
    # log-partition, and so the Fisher, is not the Dirichlet's (families of
    # several variables are not yet checked for normalisation)
    fam = sf.define_family(
        "not_dirichlet",
        DIRICHLET3.replace(" - loggamma(a3)", ""),
        variable=["x1", "x2"],
        params=ALPHAS,
        support="simplex",
    )
    d = sf.derive(fam, use_cache=False, seconds=2)
    want = textbook_fisher(list(fam.params))
    assert d.fisher is not None
    gap = (d.fisher - want).applyfunc(sp.simplify)
    assert gap == sp.diag(0, 0, -sp.polygamma(1, fam.params[2]))


def test_four_component_dirichlet_in_three_coordinates():
    fam = sf.define_family(
        "dirichlet4",
        "loggamma(a1 + a2 + a3 + a4) - loggamma(a1) - loggamma(a2) - loggamma(a3)"
        " - loggamma(a4) + (a1 - 1)*log(x1) + (a2 - 1)*log(x2) + (a3 - 1)*log(x3)"
        " + (a4 - 1)*log(1 - x1 - x2 - x3)",
        variable=["x1", "x2", "x3"],
        params={f"a{i}": "positive" for i in range(1, 5)},
        support="simplex",
    )
    x1, x2, _ = fam.variables
    assert fam.supports[2] == sp.Interval.open(0, 1 - x1 - x2)
    d = sf.derive(fam, use_cache=False)
    want = textbook_fisher(list(fam.params))
    assert (d.fisher - want).applyfunc(sp.simplify) == sp.zeros(4, 4)
    point = fam.point([0.5, 1.2, 2.0, 0.8])
    F, err = fisher_numeric(fam, list(d.score), point)
    np.testing.assert_allclose(
        np.array(F, dtype=float), d.fisher_at(point).value, rtol=1e-12, atol=0
    )
    assert err < 1e-10


# -- numeric quadrature over the simplex ------------------------------------------
@pytest.mark.parametrize(
    "alphas",
    [(0.5, 1.5, 2.0), (0.37, 0.4, 2.7), (2.7, 2.5, 0.37), (0.2, 0.2, 0.2)],
    ids=["mixed", "small-first", "small-last", "all-small"],
)
def test_numeric_fisher_on_the_simplex(dirichlet, dirichlet_derivation, alphas):
    point = dirichlet.point(list(alphas))
    F, err = fisher_numeric(dirichlet, list(dirichlet_derivation.score), point)
    want = np.array(textbook_mpmath([mpmath.mpf(a) for a in alphas]), dtype=float)
    np.testing.assert_allclose(np.array(F, dtype=float), want, rtol=1e-11, atol=0)
    assert 0 < err < 1e-9


def test_numeric_moments_on_the_simplex(dirichlet):
    x1, x2 = dirichlet.variables
    a = (0.6, 1.3, 0.9)
    s = sum(a)
    point = dirichlet.point(list(a))
    fs = [sp.Integer(1), x1, x1 * x2, sp.log(x2), sp.log(1 - x1 - x2) ** 2]
    vals, errs = expectations_numeric(dirichlet, fs, point)
    with mpmath.workdps(30):
        last = mpmath.psi(0, a[2]) - mpmath.psi(0, s)
        want = [
            1,
            a[0] / s,
            a[0] * a[1] / (s * (s + 1)),
            mpmath.psi(0, a[1]) - mpmath.psi(0, s),
            last**2 + mpmath.psi(1, a[2]) - mpmath.psi(1, s),
        ]
    for got, w, e in zip(vals, want, errs, strict=True):
        assert abs(got - w) < 1e-12 * max(1, abs(w)), (got, w)
        assert e < 1e-10


def test_fisher_at_without_a_closed_form_integrates_over_the_simplex(dirichlet):
    # no exponential-family form: no route resolves, fisher_at answers numerically
    fam = dataclasses.replace(dirichlet, name="dirichlet3_plain", expfam=None)
    d = sf.derive(fam, use_cache=False, seconds=1)
    assert d.fisher is None
    alphas = (0.5, 1.5, 2.0)
    got = d.fisher_at(dict(zip(("a1", "a2", "a3"), alphas, strict=True)))
    assert got.provenance.startswith("numeric")
    want = np.array(textbook_mpmath([mpmath.mpf(a) for a in alphas]), dtype=float)
    np.testing.assert_allclose(got.value, want, rtol=1e-11, atol=0)


def test_parameter_points_of_the_dirichlet(dirichlet):
    rng = random.Random(0)
    for _ in range(5):
        pt = random_point(dirichlet, rng)
        assert all(v > 0 for v in pt.values())
    with pytest.raises(DomainError, match=r"a2=-1.0 is outside its domain"):
        dirichlet.point({"a1": 1.0, "a2": -1.0, "a3": 2.0})


# -- products of one-dimensional supports ----------------------------------------
def test_two_independent_normals_give_a_block_diagonal_fisher():
    fam = sf.define_family(
        "two_normals",
        "normal_logpdf(x1, m1, s1) + normal_logpdf(x2, m2, s2)",
        variable=["x1", "x2"],
        params={"m1": "real", "s1": "positive", "m2": "real", "s2": "positive"},
        support=["reals", "reals"],
    )
    assert fam.support_is_product
    assert fam.support == sp.ProductSet(sp.Reals, sp.Reals)
    d = sf.derive(fam, use_cache=False)
    _, s1, _, s2 = fam.params
    want = sp.diag(1 / s1**2, 2 / s1**2, 1 / s2**2, 2 / s2**2)
    assert (d.fisher - want).applyfunc(sp.simplify) == sp.zeros(4, 4)
    assert set(d.agreement.values()) == {"proved"}


def test_mixed_product_support_and_a_dependent_interval():
    fam = sf.define_family(
        "normal_times_exponential",
        "normal_logpdf(x1, m, 1) + log(lam) - lam*x2",
        variable=["x1", "x2"],
        params={"m": "real", "lam": "positive"},
        support=["reals", "positive_reals"],
    )
    _, x2 = fam.variables
    assert fam.supports == (sp.Reals, sp.Interval.open(0, sp.oo))
    assert x2.is_positive
    d = sf.derive(fam, use_cache=False)
    _, lam = fam.params
    assert (d.fisher - sp.diag(1, 1 / lam**2)).applyfunc(sp.simplify) == sp.zeros(2, 2)
    tri = sf.define_family(
        "triangle",
        "log(2) + 0*t",
        variable=["y1", "y2"],
        params={"t": "real"},
        support=["unit_interval", "interval(0, 1 - y1)"],
    )
    y1, _ = tri.variables
    assert tri.supports[1] == sp.Interval.open(0, 1 - y1)
    total, _ = expectations_numeric(tri, [sp.Integer(1)], tri.point([0.0]))
    assert abs(total[0] - 1) < 1e-12


# -- bad input --------------------------------------------------------------------
BAD = [
    (
        {"variable": ["x1", "x2"], "support": "reals"},
        r"support 'reals' is for one variable but there are 2 variables "
        r"\['x1', 'x2'\]; pass one support per variable",
    ),
    (
        {"variable": ["x1", "x2"], "support": ["reals", "reals", "reals"]},
        r"3 supports .* for 2 variables \['x1', 'x2'\]; give exactly one support "
        "per variable",
    ),
    (
        {"variable": ["x1", "x2"], "support": ["reals"]},
        r"1 supports \['reals'\] for 2 variables",
    ),
    (
        {"variable": ["x1", "x2"], "support": ["reals", "simplicial"]},
        r"support of variable 'x2': unknown support 'simplicial'",
    ),
    (
        {"variable": ["x1", "x2"], "support": ["simplex", "reals"]},
        r"support 'simplex' of variable 'x1' is a joint support of all the "
        r"variables; pass support='simplex'",
    ),
    (
        {"variable": ["x1", "x2"], "support": ["interval(0, 1 - x2)", "reals"]},
        r"support of variable 'x1': support 'interval\(0, 1 - x2\)': unknown name "
        r"'x2'",
    ),
    ({"variable": ["x1", "x1"], "support": "simplex"}, r"variable names repeat"),
    ({"variable": [], "support": "simplex"}, r"declare at least one variable"),
    ({"variable": ["x1", "2x"], "support": "simplex"}, r"variable name '2x'"),
]


@pytest.mark.parametrize(("kw", "pattern"), BAD, ids=lambda v: str(v)[:40])
def test_bad_variable_and_support_combinations_name_the_problem(kw, pattern):
    with pytest.raises(FamilyError, match=pattern):
        sf.define_family("bad", "0*m", params={"m": "real"}, **kw)


def test_parameter_named_like_a_variable_is_refused():
    with pytest.raises(FamilyError, match=r"parameter 'x2' has the variable's name"):
        sf.define_family(
            "bad",
            "0*x2",
            params={"x2": "real"},
            variable=["x1", "x2"],
            support="simplex",
        )


def test_a_support_may_not_use_a_later_variable():
    x1, x2 = sp.symbols("x1 x2", positive=True)
    a = sp.Symbol("a", positive=True)
    with pytest.raises(FamilyError, match=r"support of x1 .* may use only earlier"):
        Family(
            name="backwards",
            params=(a,),
            domains=(sp.Interval.open(0, sp.oo),),
            variables=(x1, x2),
            log_density=a * sp.log(x1),
            supports=(sp.Interval.open(0, 1 - x2), sp.Interval.open(0, 1)),
        )


# -- the recogniser ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("log_density", "params", "support", "T"),
    [
        (
            "log(x) - 2*log(s) - x**2/(2*s**2)",
            {"s": "positive"},
            "positive_reals",
            "x**2",
        ),
        (
            "-loggamma(k) - k*log(th) + (k - 1)*log(x) - x/th",
            {"k": "positive", "th": "positive"},
            "positive_reals",
            "x, log(x)",
        ),
        (
            "x*log(lam) - lam - loggamma(x + 1)",
            {"lam": "positive"},
            "nonnegative_integers",
            "x",
        ),
    ],
    ids=["rayleigh", "gamma", "poisson"],
)
def test_recogniser_finds_textbook_exponential_families(
    log_density, params, support, T
):
    fam = sf.define_family("ef", log_density, params=params, support=support)
    ef = fam.expfam
    assert ef is not None
    assert ", ".join(map(str, ef.T)) == T
    # A(eta(theta)) is the log-partition: its gradient in n is E[T]
    x = fam.x
    pt = random_point(fam, random.Random(3))
    at = {n: e.subs(pt) for n, e in zip(ef.nat, ef.eta, strict=True)}
    grad = [sp.N(sp.diff(ef.A, n).subs(at), 30) for n in ef.nat]
    want, _ = expectations_numeric(fam, list(ef.T), pt, dps=30)
    for g, w in zip(grad, want, strict=True):
        assert abs(mpmath.mpf(str(g)) - w) < 1e-15 * max(1, abs(w)), (g, w, x)


@pytest.mark.parametrize(
    ("log_density", "params", "support"),
    [
        (
            "log(k) - log(lam) + (k - 1)*log(x/lam) - (x/lam)**k",
            {"k": "positive", "lam": "positive"},
            "positive_reals",
        ),
        (
            "-log(pi) - log(g) - log(1 + ((x - x0)/g)**2)",
            {"x0": "real", "g": "positive"},
            "reals",
        ),
        (
            "log(2) - log(omega) + normal_logpdf((x - xi)/omega)"
            " + log_Phi(alpha*(x - xi)/omega)",
            {"xi": "real", "omega": "positive", "alpha": "real"},
            "reals",
        ),
    ],
    ids=["weibull", "cauchy", "skew_normal"],
)
def test_recogniser_leaves_other_families_alone(log_density, params, support):
    fam = sf.define_family("other", log_density, params=params, support=support)
    assert fam.expfam is None
    assert recognise_expfam(fam) is None


def test_skew_normal_derives_and_its_fisher_at_alpha_zero_is_known():
    fam = sf.define_family(
        "skew_normal",
        "log(2) - log(omega) + normal_logpdf((x - xi)/omega)"
        " + log_Phi(alpha*(x - xi)/omega)",
        params={"xi": "real", "omega": "positive", "alpha": "real"},
    )
    assert fam.log_density.has(sp.erfc)
    d = sf.derive(fam, use_cache=False, seconds=2)
    omega = 1.3
    got = d.fisher_at({"xi": 0.1, "omega": omega, "alpha": 0.0})
    c = np.sqrt(2 / np.pi)
    want = np.array(
        [[1 / omega**2, 0, c / omega], [0, 2 / omega**2, 0], [c / omega, 0, 2 / np.pi]]
    )
    np.testing.assert_allclose(got.value, want, rtol=1e-10, atol=1e-14)


def test_iterated_region_with_an_unbounded_coordinate():
    # x1 ~ Exponential(lam), x2 | x1 ~ Uniform(0, x1)
    fam = sf.define_family(
        "exp_uniform",
        "log(lam) - lam*x1 - log(x1)",
        variable=["x1", "x2"],
        params={"lam": "positive"},
        support=["positive_reals", "interval(0, x1)"],
    )
    assert not fam.support_is_product
    lam = 2.0
    vals, _ = expectations_numeric(
        fam, [sp.Integer(1), fam.variables[1]], fam.point([lam]), dps=20
    )
    assert abs(vals[0] - 1) < 1e-15
    assert abs(vals[1] - 1 / (2 * lam)) < 1e-15
    d = sf.derive(fam, use_cache=False)
    assert d.fisher == sp.Matrix([[1 / fam.params[0] ** 2]])
