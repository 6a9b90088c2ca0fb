"""More closed forms: Gumbel, Weibull, logistic Fisher; the Laplace KL; route 3 by
quadrature where no closed-form KL exists (Student-t)."""

import importlib.util
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive import agreement
from symfisher.derive import fisher as routes
from symfisher.derive.expectation import LOGMOMENTS

SECONDS = 60  # generous: the machine running the tests may be busy
G = 0.57721566490153286060651209  # Euler–Mascheroni
PI2_6 = math.pi**2 / 6

TEXTBOOK = {
    "gumbel": (
        "-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)",
        {"mu": "real", "beta": "positive"},
        "reals",
        lambda mu, beta: (
            np.array([[1, G - 1], [G - 1, (1 - G) ** 2 + PI2_6]]) / beta**2
        ),
    ),
    "weibull": (
        "log(k) - log(lam) + (k - 1)*log(x/lam) - (x/lam)**k",
        {"k": "positive", "lam": "positive"},
        "positive_reals",
        lambda k, lam: np.array(
            [
                [((1 - G) ** 2 + PI2_6) / k**2, -(1 - G) / lam],
                [-(1 - G) / lam, k**2 / lam**2],
            ]
        ),
    ),
    "logistic": (
        "-(x - m)/s - log(s) - 2*log(1 + exp(-(x - m)/s))",
        {"m": "real", "s": "positive"},
        "reals",
        lambda m, s: np.diag([1 / (3 * s**2), (math.pi**2 + 3) / (9 * s**2)]),
    ),
}


@pytest.fixture(scope="module")
def derived():
    memo = {}

    def get(name):
        if name not in memo:
            if name in TEXTBOOK:
                logp, params, support, _ = TEXTBOOK[name]
                fam = sf.define_family(
                    name, log_density=logp, variable="x", params=params, support=support
                )
            else:
                fam = sf.family(name)
            memo[name] = sf.derive(fam, seconds=SECONDS, use_cache=False)
        return memo[name]

    return get


def _at(M, fam, values):
    sub = {p: sp.Float(v, 30) for p, v in zip(fam.params, values, strict=True)}
    return np.array(M.evalf(30, subs=sub).tolist(), dtype=float)


# -- Gumbel, Weibull, logistic: closed forms from the log-moment table ---------------
@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_textbook_fisher_in_closed_form(derived, name):
    d = derived(name)
    assert d.fisher is not None, d.provenance
    assert d.fisher.has(sp.pi) or d.fisher.has(sp.EulerGamma)
    for r in ("score_covariance", "neg_expected_hessian"):
        assert d.provenance[r][0] == LOGMOMENTS
        assert d.routes[r] is not None
    want = TEXTBOOK[name][3]
    for values in [(0.3, 1.7), (1.8, 0.6), (-0.4, 0.8)]:
        if name == "weibull" and values[0] < 0:
            continue
        np.testing.assert_allclose(
            _at(d.fisher, d.family, values), want(*values), rtol=1e-14, atol=0
        )
    assert d.agreement[("score_covariance", "neg_expected_hessian")] == "proved"


@pytest.mark.parametrize("name", ["gumbel", "weibull"])
def test_gumbel_and_weibull_kl_is_closed_and_route_3_proved(derived, name):
    """Their KL needs E[e^{a Y}] = Gamma(1 - a) with a symbolic a (from the table)."""
    d = derived(name)
    assert d.kl is not None and d.kl.has(sp.gamma)
    assert d.routes["kl_hessian"] is not None
    assert set(d.agreement.values()) == {"proved"}


def test_logistic_route_3_is_the_quadrature_kl(derived):
    d = derived("logistic")
    assert d.kl is None
    assert d.provenance["kl_hessian"][0] == routes.KL_QUADRATURE
    assert d.agreement[("score_covariance", "kl_hessian")] == "tested"


def test_readme_gumbel_example_is_closed_form(derived):
    F = derived("gumbel").fisher_at({"mu": 0.3, "beta": 1.7})
    assert F.provenance.startswith("closed form")
    np.testing.assert_allclose(F[0, 0], 1 / 1.7**2, rtol=1e-15)


# -- Laplace ---------------------------------------------------------------------------
def _laplace_kl_quadrature(mu, b, mu2, b2, dps=50):
    with mpmath.workdps(dps + 10):
        mu, b, mu2, b2 = map(mpmath.mpf, (mu, b, mu2, b2))

        def f(x):
            lp = -mpmath.log(2 * b) - abs(x - mu) / b
            lq = -mpmath.log(2 * b2) - abs(x - mu2) / b2
            return mpmath.exp(lp) * (lp - lq)

        cuts = sorted({mu, mu2})
        return mpmath.quad(f, [-mpmath.inf, *cuts, mpmath.inf])


LAPLACE_POINTS = [
    (0.3, 1.7, 0.3, 1.7),  # equal: 0
    (0.3, 1.7, 0.3, 0.9),  # same location
    (0.3, 1.7, 1.1, 1.7),  # mu' > mu
    (0.3, 1.7, -2.0, 0.6),  # mu' < mu
    (-1.0, 0.5, 40.0, 2.5),  # far apart: exp(-82) in the formula
    (25.0, 3.0, -25.0, 0.2),
]


@pytest.mark.parametrize("point", LAPLACE_POINTS, ids=str)
def test_laplace_kl_matches_50_digit_quadrature(derived, point):
    d = derived("laplace")
    mu, b = d.family.params
    mu2, b2 = d.kl_primed
    sub = dict(zip((mu, b, mu2, b2), (sp.Float(v, 50) for v in point), strict=True))
    got = d.kl.evalf(50, subs=sub)
    want = _laplace_kl_quadrature(*point)
    with mpmath.workdps(60):
        assert abs(mpmath.mpf(str(got)) - want) <= mpmath.mpf(10) ** -40 * max(
            1, abs(want)
        )


def test_laplace_kl_is_the_textbook_formula(derived):
    d = derived("laplace")
    mu, b = d.family.params
    mu2, b2 = d.kl_primed
    gap = sp.Abs(mu - mu2)
    textbook = sp.log(b2 / b) + gap / b2 + b / b2 * sp.exp(-gap / b) - 1
    assert sp.simplify(d.kl - textbook) == 0
    assert "split on the sign of mu - mu'" in d.kl_detail


def test_laplace_route_3_from_both_branches_equals_routes_1_and_2(derived):
    d = derived("laplace")
    assert d.routes["kl_hessian"] is not None
    method, detail, _ = d.provenance["kl_hessian"]
    assert method.startswith("Hessian of the closed-form KL")
    assert "equal value, gradient and Hessian" in detail
    assert set(d.agreement.values()) == {"proved"}
    b = d.family.params[1]
    assert sp.simplify(d.routes["kl_hessian"] - sp.eye(2) / b**2) == sp.zeros(2, 2)


def test_disagreeing_branches_give_no_route_3():
    """A planted kink: branches with different curvature at mu' = mu are refused."""
    fam = sf.family("laplace")
    mu, b = fam.params
    mu2, b2 = fam.primed()
    good = sp.log(b2 / b) + b / b2 * sp.exp(-(mu - mu2) / b) + (mu - mu2) / b2 - 1
    bent = good + (mu - mu2) ** 2  # C^1 but with a jump in curvature
    from symfisher.derive.kl import KL

    ok = KL(good, (mu2, b2), "test", "", ((good, mu2 < mu), (good, mu2 > mu)))
    bad = KL(good, (mu2, b2), "test", "", ((good, mu2 < mu), (bent, mu2 > mu)))
    assert routes.kl_hessian(fam, ok).matrix is not None
    r = routes.kl_hessian(fam, bad)
    assert r.matrix is None and "do not agree" in r.detail


def test_laplace_kernel_kl_is_stable_and_twice_differentiable(derived, tmp_path):
    import jax
    import jax.numpy as jnp

    d = derived("laplace")
    path = sf.generate(d, tmp_path)
    spec = importlib.util.spec_from_file_location("laplace_kernel", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert m.PROVENANCE["kl"] == "closed form"
    assert "jnp.abs" in path.read_text()
    for mu, b in [(0.3, 1.7), (-1.2, 0.4)]:
        th = jnp.array([mu, b], dtype=jnp.float64)
        H = np.asarray(jax.hessian(m.kl, argnums=1)(th, th))
        np.testing.assert_allclose(H, np.eye(2) / b**2, rtol=1e-12, atol=0)
    for point in [*LAPLACE_POINTS[1:], (0.3, 1.7, 0.3 + 1e-3, 1.7)]:
        got = float(m.kl(jnp.array(point[:2]), jnp.array(point[2:])))
        want = float(_laplace_kl_quadrature(*point, dps=30))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


# -- Student-t: route 3 by the quadrature KL -----------------------------------------
def test_student_t_route_3_by_quadrature_is_tested(derived):
    d = derived("student_t")
    assert d.kl is None and d.routes["kl_hessian"] is None
    assert d.provenance["kl_hessian"][0] == routes.KL_QUADRATURE
    for pair in [
        ("score_covariance", "kl_hessian"),
        ("neg_expected_hessian", "kl_hessian"),
    ]:
        assert d.agreement[pair] == "tested", d.agreement_detail[pair]
    assert d.fisher is not None


def test_quadrature_route_3_catches_a_planted_5_percent_error():
    fam = sf.family("student_t")
    numeric, how = routes.kl_hessian_numeric(fam, SECONDS)
    assert numeric is not None, how
    assert [pt for pt, _ in numeric] == agreement.random_points(fam, len(numeric))
    _, sigma = fam.params
    F = sp.diag(5 / (7 * sigma**2), 8 / (7 * sigma**2))  # nu = 4
    assert agreement.compare_numeric(fam, F, numeric, how)[0] == "tested"
    status, detail = agreement.compare_numeric(fam, F * sp.Rational(105, 100), numeric)
    assert status == "differs", detail
    off = F + sp.Matrix([[0, 1e-15], [1e-15, 0]])  # tiny but above 1e-20
    assert agreement.compare_numeric(fam, off, numeric)[0] == "differs"
