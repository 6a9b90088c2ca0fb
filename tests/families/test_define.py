"""User-defined families: fisher_at against published closed forms (1e-8 rel)."""

import math

import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.errors import DomainError, FamilyError, ParseError

G = 0.57721566490153286060651209  # Euler–Mascheroni
PI2_6 = math.pi**2 / 6

# name, log-density, params, support, point, published Fisher (a function of the point)
PUBLISHED = [
    (
        "gumbel",
        "-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)",
        {"mu": "real", "beta": "positive"},
        "reals",
        {"mu": 0.3, "beta": 1.7},
        lambda mu, beta: (
            np.array([[1, G - 1], [G - 1, (1 - G) ** 2 + PI2_6]]) / beta**2
        ),
    ),
    (
        "weibull",
        "log(k) - log(lam) + (k - 1)*log(x/lam) - (x/lam)**k",
        {"k": "positive", "lam": "positive"},
        "positive_reals",
        {"k": 1.8, "lam": 0.6},
        lambda k, lam: np.array(
            [
                [((1 - G) ** 2 + PI2_6) / k**2, -(1 - G) / lam],
                [-(1 - G) / lam, k**2 / lam**2],
            ]
        ),
    ),
    (
        "rayleigh",
        "log(x) - 2*log(s) - x**2/(2*s**2)",
        {"s": "positive"},
        "positive_reals",
        {"s": 1.3},
        lambda s: np.array([[4 / s**2]]),
    ),
    (
        "logistic",
        "-(x - m)/s - log(s) - 2*log(1 + exp(-(x - m)/s))",
        {"m": "real", "s": "positive"},
        "reals",
        {"m": -0.4, "s": 0.8},
        lambda m, s: np.diag([1 / (3 * s**2), (math.pi**2 + 3) / (9 * s**2)]),
    ),
    (
        "cauchy",
        "-log(pi) - log(g) - log(1 + ((x - x0)/g)**2)",
        {"x0": "real", "g": "positive"},
        "reals",
        {"x0": 0.5, "g": 2.0},
        lambda x0, g: np.eye(2) / (2 * g**2),
    ),
    (
        "lognormal",
        "-log(x) - log(sigma) - log(2*pi)/2 - (log(x) - mu)**2/(2*sigma**2)",
        {"mu": "real", "sigma": "positive"},
        "positive_reals",
        {"mu": 0.2, "sigma": 0.7},
        lambda mu, sigma: np.diag([1 / sigma**2, 2 / sigma**2]),
    ),
    (
        "halfnormal",
        "log(2) - log(sigma) - log(2*pi)/2 - x**2/(2*sigma**2)",
        {"sigma": "positive"},
        "positive_reals",
        {"sigma": 0.9},
        lambda sigma: np.array([[2 / sigma**2]]),
    ),
    (
        "maxwell",
        "log(2/pi)/2 + 2*log(x) - x**2/(2*a**2) - 3*log(a)",
        {"a": "positive"},
        "positive_reals",
        {"a": 1.4},
        lambda a: np.array([[6 / a**2]]),
    ),
    (
        "pareto_shape",
        "log(alpha) - (alpha + 1)*log(x)",
        {"alpha": "positive"},
        "interval(1, oo)",
        {"alpha": 2.5},
        lambda alpha: np.array([[1 / alpha**2]]),
    ),
    (
        "inverse_gaussian",
        "log(lam)/2 - log(2*pi)/2 - 3*log(x)/2 - lam*(x - mu)**2/(2*mu**2*x)",
        {"mu": "positive", "lam": "positive"},
        "positive_reals",
        {"mu": 1.5, "lam": 2.2},
        lambda mu, lam: np.diag([lam / mu**3, 1 / (2 * lam**2)]),
    ),
    (
        "geometric",
        "x*log(1 - p) + log(p)",
        {"p": "unit_interval"},
        "nonnegative_integers",
        {"p": 0.35},
        lambda p: np.array([[1 / (p**2 * (1 - p))]]),
    ),
    (
        "binomial10",
        "log(binomial(10, x)) + x*log(p) + (10 - x)*log(1 - p)",
        {"p": "unit_interval"},
        "range(0, 11)",
        {"p": 0.3},
        lambda p: np.array([[10 / (p * (1 - p))]]),
    ),
    (
        "negbin3",
        "log(binomial(x + 2, x)) + 3*log(p) + x*log(1 - p)",
        {"p": "unit_interval"},
        "nonnegative_integers",
        {"p": 0.45},
        lambda p: np.array([[3 / (p**2 * (1 - p))]]),
    ),
    (
        "poisson_user",
        "x*log(lam) - lam - loggamma(x + 1)",
        {"lam": "positive"},
        "nonnegative_integers",
        {"lam": 3.7},
        lambda lam: np.array([[1 / lam]]),
    ),
]


@pytest.mark.parametrize("case", PUBLISHED, ids=[c[0] for c in PUBLISHED])
def test_fisher_at_matches_published_closed_form(case):
    name, logp, params, support, point, published = case
    fam = sf.define_family(
        name, log_density=logp, variable="x", params=params, support=support
    )
    d = sf.derive(fam, seconds=8)
    got = d.fisher_at(point)
    want = published(**point)
    np.testing.assert_allclose(
        np.asarray(got), want, rtol=1e-8, atol=1e-12 * np.abs(want).max()
    )
    assert got.provenance


def test_gumbel_example_from_the_issue():
    my = sf.define_family(
        "gumbel",
        log_density="-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)",
        variable="x",
        params={"mu": "real", "beta": "positive"},
        support="reals",
    )
    F = sf.derive(my, seconds=8).fisher_at({"mu": 0.3, "beta": 1.7})
    assert F.shape == (2, 2)
    np.testing.assert_allclose(F[0, 0], 1 / 1.7**2, rtol=1e-10)


def test_define_from_sympy_expression_rebinds_symbols_by_name():
    x, lam = sp.symbols("x lam")  # no assumptions: rebound to the declared ones
    fam = sf.define_family(
        "expo",
        log_density=sp.log(lam) - lam * x,
        params={"lam": "positive"},
        support="positive_reals",
    )
    d = sf.derive(fam)
    assert sp.simplify(d.fisher[0, 0] - 1 / fam.params[0] ** 2) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(params={"mu": "complex"}), "unknown domain 'complex' for mu"),
        (dict(params={"mu": "real"}, support="the reals"), "unknown support"),
        (dict(params={"mu": "real"}, support="range(3, 1)"), "range is empty"),
        (dict(params={"mu": "real"}, support="interval(0)"), "two bounds"),
        (dict(params={"x": "real"}), "variable's name"),
        (dict(params={}), "at least one parameter"),
        (dict(params={"1mu": "real"}), "must be an identifier"),
    ],
)
def test_bad_definitions_name_the_problem(kwargs, match):
    with pytest.raises(FamilyError, match=match):
        sf.define_family("bad", log_density="-(x - mu)**2/2", **kwargs)


def test_hostile_log_density_is_rejected_with_the_token():
    with pytest.raises(ParseError, match="__import__"):
        sf.define_family(
            "evil", log_density="__import__('os').system('true')", params={"mu": "real"}
        )
    with pytest.raises(ParseError, match="nu"):
        sf.define_family(
            "undeclared", log_density="-(x - nu)**2", params={"mu": "real"}
        )


def test_sympy_expression_with_undeclared_symbol_is_rejected():
    x, y = sp.symbols("x y")
    with pytest.raises(FamilyError, match="undeclared symbol 'y'"):
        sf.define_family("f", log_density=-((x - y) ** 2), params={"mu": "real"})


@pytest.mark.parametrize(
    "point, match",
    [
        ({"mu": 0.0}, r"missing parameter\(s\) \['sigma'\]"),
        ({"mu": 0.0, "sigma": 1.0, "nu": 2.0}, r"unknown parameter\(s\) \['nu'\]"),
        ({"mu": 0.0, "sigma": -1.0}, r"sigma=-1.0 is outside its domain"),
        ({"mu": 0.0, "sigma": 0.0}, r"sigma=0.0 is outside its domain"),
        ({"mu": float("nan"), "sigma": 1.0}, "mu=nan is not finite"),
        ({"mu": "abc", "sigma": 1.0}, "is not a real number"),
        ([0.0], r"expected 2 values \['mu', 'sigma'\], got 1"),
    ],
)
def test_bad_points_raise_domain_errors(point, match):
    d = sf.derive("normal")
    with pytest.raises(DomainError, match=match):
        d.fisher_at(point)


def test_probability_outside_unit_interval_is_rejected():
    with pytest.raises(DomainError, match=r"p=1.2 is outside its domain"):
        sf.derive("bernoulli").fisher_at({"p": 1.2})
    with pytest.raises(DomainError, match=r"sum of p_0\.\.p_1 must be < 1"):
        sf.derive("categorical").fisher_at({"p_0": 0.6, "p_1": 0.5})


def test_unknown_family_and_bad_size():
    with pytest.raises(FamilyError, match="unknown family 'nope'"):
        sf.family("nope")
    with pytest.raises(FamilyError, match="takes no size keywords"):
        sf.family("normal", K=3)
    with pytest.raises(FamilyError, match="size K must be an integer >= 2"):
        sf.family("categorical_softmax", K=1)


def test_domain_errors_write_the_domain_in_plain_maths():
    with pytest.raises(DomainError, match=r"sigma ∈ \(0, ∞\)$"):
        sf.family("normal").point({"mu": 0.0, "sigma": -1.0})
