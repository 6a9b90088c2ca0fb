"""normalize=True without a closed form: Z(theta) as an integral (or sum), by quadrature."""

import mpmath
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.errors import FamilyError
from symfisher.families import normalization, normalizer

INF = mpmath.inf


@pytest.fixture(scope="module")
def quartic():
    # Z(a) = int exp(a x - x^4) dx: no closed form SymPy finds
    return sf.define_family(
        "quartic", "a*x - x**4", params={"a": "real"}, normalize=True
    )


@pytest.fixture(scope="module")
def cmp():
    # Conway-Maxwell-Poisson: Z = sum lam^k / (k!)^nu
    return sf.define_family(
        "cmp",
        "k*log(lam) - nu*loggamma(k + 1)",
        variable="k",
        params={"lam": "positive", "nu": "positive"},
        support="nonnegative_integers",
        normalize=True,
    )


@pytest.fixture(scope="module")
def quartic_derived(quartic):
    return sf.derive(quartic, seconds=60)


def quartic_moments(a: float, dps: int = 40) -> tuple:
    """Reference ``(log Z, E[x], Var x)`` by mpmath, independently of symfisher."""
    with mpmath.workdps(dps):

        def m(k):
            return mpmath.quad(
                lambda x: x**k * mpmath.exp(a * x - x**4), [-INF, 0, INF]
            )

        z, m1, m2 = m(0), m(1) / m(0), m(2) / m(0)
        return mpmath.log(z), m1, m2 - m1**2


def cmp_log_z(lam: float, nu: float) -> mpmath.mpf:
    with mpmath.workdps(40):
        return mpmath.log(
            mpmath.nsum(lambda k: lam**k / mpmath.factorial(k) ** nu, [0, INF])
        )


def test_the_normaliser_is_an_integral_over_the_support(quartic, cmp):
    assert normalizer.has_normalizer(quartic.log_density)
    (z,) = normalizer.normalizers(quartic.log_density)
    assert isinstance(z, sp.Integral) and z.limits == ((quartic.x, -sp.oo, sp.oo),)
    (s,) = normalizer.normalizers(cmp.log_density)
    assert isinstance(s, sp.Sum) and s.limits == ((cmp.x, 0, sp.oo),)
    a = quartic.params[0]
    assert normalizer.unnormalized(quartic.log_density) == a * quartic.x - quartic.x**4
    # no log-partition in closed form: not taken for an exponential family
    assert quartic.expfam is None


@pytest.mark.parametrize("a", [-1.3, 0.0, 0.7, 2.5])
def test_at_point_matches_an_independent_quadrature(quartic, a):
    lz, _, _ = quartic_moments(a)
    x0 = sp.Rational(3, 10)
    got = normalizer.at_point(
        quartic.log_density.subs(quartic.x, x0), {quartic.params[0]: a}
    )
    want = a * mpmath.mpf("0.3") - mpmath.mpf("0.3") ** 4 - lz
    assert abs(mpmath.mpf(str(sp.N(got, 40))) - want) < 1e-25


@pytest.mark.parametrize("lam, nu", [(0.4, 1.3), (1.7, 0.8), (3.0, 0.5)])
def test_a_sum_normaliser_matches_an_independent_sum(cmp, lam, nu):
    lam_s, nu_s = cmp.params
    got = normalizer.at_point(cmp.log_density.subs(cmp.x, 2), {lam_s: lam, nu_s: nu})
    want = 2 * mpmath.log(lam) - nu * mpmath.loggamma(3) - cmp_log_z(lam, nu)
    assert abs(mpmath.mpf(str(sp.N(got, 40))) - want) < 1e-25


def test_score_differentiates_under_the_integral(quartic):
    (a,), x = quartic.params, quartic.x
    score = sp.diff(quartic.log_density, a)
    for av in (-0.5, 1.5):
        _, m1, _ = quartic_moments(av)
        got = normalizer.at_point(score.subs(x, 1), {a: av})
        assert abs(mpmath.mpf(str(sp.N(got, 40))) - (1 - m1)) < 1e-25


@pytest.mark.parametrize("a", [-1.0, 0.6])
def test_numeric_fisher_is_the_variance_of_x(quartic_derived, a):
    # exponential family in x with natural parameter a: F(a) = Var(x)
    d = quartic_derived
    assert d.fisher is None  # no closed form ...
    F = d.fisher_at({"a": a})  # ... but the numeric route answers
    _, _, var = quartic_moments(a)
    assert abs(float(F[0, 0]) - float(var)) <= 1e-12 * float(var) + 10 * F.error


def test_route_three_is_the_hessian_of_the_quadrature_kl(quartic_derived):
    d = quartic_derived
    method, detail, _ = d.provenance["kl_hessian"]
    assert "quadrature KL" in method, (method, detail)


def test_a_divergent_density_is_rejected_by_quadrature(monkeypatch):
    # SymPy gives up at once; the 30-digit total then sees the divergence
    monkeypatch.setattr(normalization, "NORMALIZER_SECONDS", 0.0)
    with pytest.raises(FamilyError, match="not normalisable"):
        sf.define_family(
            "bad", "a*x + x**4/(1 + x**2)", params={"a": "real"}, normalize=True
        )


def test_several_variables_are_refused_with_the_count(monkeypatch):
    monkeypatch.setattr(normalization, "NORMALIZER_SECONDS", 0.0)
    with pytest.raises(FamilyError, match="one variable, got 2"):
        sf.define_family(
            "two",
            "-x1**4 - x2**4 + a*x1",
            variable=["x1", "x2"],
            params={"a": "real"},
            support=["reals", "reals"],
            normalize=True,
        )


def test_the_generic_sampler_draws_from_the_normalised_density(quartic):
    import jax

    from symfisher.families.generic_sampler import default_sampler

    sample = default_sampler(quartic)
    a = 0.8
    draws = np.asarray(sample(jax.random.PRNGKey(0), np.array([a]), (200_000,)))
    _, m1, var = quartic_moments(a)
    se = float(mpmath.sqrt(var / len(draws)))
    assert abs(draws.mean() - float(m1)) < 5 * se  # 5 se: a 1-in-1.7-million miss
