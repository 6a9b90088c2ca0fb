"""sf.pushforward: the family of y = g(x), with the Jacobian; its Fisher is unchanged."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.errors import FamilyError, ParseError
from symfisher.families.normalization import total_at


def _rename(fam, name="x"):
    """The log-density with the variable renamed, for comparing with another family."""
    (y,) = fam.variables
    return fam.log_density.subs(y, sp.Symbol(name, real=True))


def test_exported():
    assert "pushforward" in sf.__all__
    assert sf.pushforward.__module__ == "symfisher.families.pushforward"


def test_normal_through_exp_is_the_lognormal_and_its_fisher_is_the_normals():
    fam = sf.pushforward(sf.family("normal"), "exp(x)")
    mu, sigma = fam.params
    (y,) = fam.variables
    lognormal = (
        -sp.log(y)
        - sp.log(sigma)
        - sp.log(2 * sp.pi) / 2
        - (sp.log(y) - mu) ** 2 / (2 * sigma**2)
    )
    assert sp.simplify(fam.log_density - lognormal) == 0
    assert fam.supports == (sp.Interval.open(0, sp.oo),)
    d = sf.derive(fam)
    assert d.fisher is not None
    assert sp.simplify(d.fisher - sf.derive(sf.family("normal")).fisher) == sp.zeros(2)


def test_normal_through_tanh_is_the_tanh_gaussian():
    fam = sf.pushforward(sf.family("normal"), "tanh(x)", variable="x")
    ref = sf.family("tanh_gaussian")
    assert fam.supports == ref.supports
    assert sp.simplify(_rename(fam) - ref.log_density) == 0


def test_rescaled_tanh_gaussian_has_the_same_fisher():
    base = sf.family("tanh_gaussian")
    fam = sf.pushforward(base, "-2 + 4*(x + 1)/2", variable="a")
    assert fam.supports == (sp.Interval.open(-2, 2),)
    assert fam.latent is not None  # integration over the Gaussian latent, as for base
    point = {"mu": 0.3, "sigma": 0.8}
    got = sf.derive(fam, seconds=1).fisher_at(point)
    want = sf.derive(base, seconds=1).fisher_at(point)
    np.testing.assert_allclose(
        np.asarray(got, dtype=float),
        np.asarray(want, dtype=float),
        rtol=1e-12,
        atol=1e-14,
    )
    # the normal's Fisher, diag(1/sigma^2, 2/sigma^2)
    np.testing.assert_allclose(
        np.asarray(got, dtype=float),
        np.diag([1 / 0.64, 2 / 0.64]),
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize(
    "family, g, point, support",
    [
        ("exponential", "1/x", {"lam": 1.3}, sp.Interval.open(0, sp.oo)),
        ("exponential", "-x", {"lam": 0.7}, sp.Interval.open(-sp.oo, 0)),
        ("gamma", "-log(x)", {"a": 1.7, "b": 0.6}, sp.Interval(-sp.oo, sp.oo)),
        ("beta", "logit(x)", {"a": 2.5, "b": 0.8}, sp.Interval(-sp.oo, sp.oo)),
        ("normal", "sigmoid(x)", {"mu": -0.4, "sigma": 1.3}, sp.Interval.open(0, 1)),
        ("normal", "sinh(x)", {"mu": 0.2, "sigma": 0.9}, sp.Interval(-sp.oo, sp.oo)),
    ],
    ids=[
        "inverse_exponential",
        "negated",
        "log_gamma",
        "logit_beta",
        "logit_normal",
        "sinh_normal",
    ],
)
def test_fisher_at_is_unchanged_and_the_result_is_normalised(family, g, point, support):
    base = sf.family(family)
    fam = sf.pushforward(base, g)
    assert fam.supports == (support,)
    pt = fam.point(point)
    with mpmath.workdps(30):
        total, err = total_at(fam, pt)
        assert abs(total - 1) < 1e-15 and err < 1e-15
    got = np.asarray(sf.derive(fam, seconds=1).fisher_at(point), dtype=float)
    want = np.asarray(sf.derive(base, seconds=1).fisher_at(point), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * abs(want).max())


def test_laplace_kink_moved_by_the_map_is_found_by_the_normalisation_check():
    # |asinh(y) - mu| has its kink at y = sinh(mu): a breakpoint of the quadrature
    fam = sf.pushforward(sf.family("laplace"), "sinh(x)")
    with mpmath.workdps(30):
        total, err = total_at(fam, fam.point({"mu": 0.2, "b": 0.9}))
        assert abs(total - 1) < 1e-20 and err < 1e-20


def test_parameter_dependent_support_is_mapped():
    fam = sf.pushforward(sf.family("uniform"), "exp(x)")
    (theta,) = fam.params
    assert fam.supports == (sp.Interval.open(1, sp.exp(theta)),)
    assert fam.support_depends_on_params == (theta,)
    with mpmath.workdps(30):
        total, _ = total_at(fam, {theta: 1.7})
    assert abs(total - 1) < 1e-20


def test_sampler_is_the_base_sampler_mapped_through_g():
    base = sf.family("normal")
    fam = sf.pushforward(base, "exp(x)")
    key = jax.random.key(3)
    theta = jnp.array([0.2, 0.5])
    ys = fam.sampler(key, theta, (1000,))
    xs = base.sampler(key, theta, (1000,))
    np.testing.assert_allclose(ys, jnp.exp(xs), rtol=1e-6)
    assert ys.shape == (1000,) and ys.dtype == xs.dtype
    # mean of the lognormal, exp(mu + sigma^2/2), within 5 standard errors
    n = 100_000
    ys = np.asarray(fam.sampler(key, jnp.array([0.2, 0.5], dtype=jnp.float64), (n,)))
    mean = np.exp(0.2 + 0.5**2 / 2)
    assert abs(ys.mean() - mean) < 5 * ys.std() / np.sqrt(n)


def test_sampler_of_a_rescaled_tanh_gaussian_stays_in_its_support():
    fam = sf.pushforward(sf.family("tanh_gaussian"), "-2 + 4*(x + 1)/2")
    ys = fam.sampler(jax.random.key(0), jnp.array([0.3, 0.8]), (500,))
    assert float(ys.min()) > -2 and float(ys.max()) < 2


def test_family_without_sampler_gives_one_without_sampler():
    base = sf.define_family(
        "expo", "log(lam) - lam*x", params={"lam": "positive"}, support="positive_reals"
    )
    assert sf.pushforward(base, "sqrt(x)").sampler is None


@pytest.mark.parametrize(
    "family, g, match",
    [
        ("normal", "x**2", r"g\(x\) = x\*\*2 is not monotone"),
        ("normal", "sin(x)", r"g\(x\) = sin\(x\) is not monotone"),
        ("normal", "x**3", r"no unique inverse of g\(x\) = x\*\*3"),
        ("normal", "mu*x", r"uses the parameter\(s\) \['mu'\]"),
        ("normal", "3", "does not depend on x"),
        ("poisson", "2*x", "needs a continuous support"),
        ("bernoulli", "2*x", "needs a continuous support"),
        ("diag_gaussian", "2*x", "needs one variable"),
    ],
)
def test_bad_maps_raise_family_errors(family, g, match):
    fam = sf.family(family, d=2) if family == "diag_gaussian" else sf.family(family)
    with pytest.raises(FamilyError, match=match):
        sf.pushforward(fam, g)


def test_expression_is_parsed_safely():
    with pytest.raises(ParseError, match="__import__"):
        sf.pushforward(sf.family("normal"), "__import__('os').system('true')")
    with pytest.raises(ParseError, match="z"):
        sf.pushforward(sf.family("normal"), "exp(z)")


def test_sympy_expression_is_rebound_by_name():
    x = sp.Symbol("x")  # no assumptions: rebound to the family's variable
    fam = sf.pushforward(sf.family("normal"), sp.exp(x), name="lognormal")
    assert fam.name == "lognormal"
    assert fam.supports == (sp.Interval.open(0, sp.oo),)
