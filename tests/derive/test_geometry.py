"""Reparameterisation, Cramér–Rao, natural gradient, non-regular families."""

import random

import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point
from symfisher.errors import DerivationError, DomainError, FamilyError


@pytest.mark.parametrize(
    "base, mapping, params",
    [
        ("normal", {"sigma": "exp(omega)"}, None),
        ("normal", {"sigma": "sqrt(v)"}, {"v": "positive"}),
        ("bernoulli", {"p": "1/(1 + exp(-eta))"}, None),
        ("gamma", {"a": "exp(s)", "b": "exp(s - m)"}, None),
        ("poisson", {"lam": "exp(eta)"}, None),
    ],
)
def test_reparameterised_fisher_is_pullback(base, mapping, params):
    """F_omega = J^T F_theta(h(omega)) J with J = d theta / d omega."""
    fam = sf.family(base)
    new = sf.reparameterize(fam, mapping, params=params)
    d_old, d_new = sf.derive(fam), sf.derive(new)
    subs = {
        p: new_expr
        for p, new_expr in zip(fam.params, _old_exprs(fam, new, mapping), strict=False)
    }
    J = sp.Matrix([[sp.diff(subs[p], q) for q in new.params] for p in fam.params])
    pull = J.T * d_old.fisher.subs(subs) * J
    diff = d_new.fisher - pull
    rng = random.Random(base)
    for _ in range(5):
        pt = {k: sp.Float(v, 50) for k, v in random_point(new, rng).items()}
        vals = np.array(diff.evalf(50, subs=pt).tolist(), dtype=float)
        scale = np.abs(np.array(pull.evalf(50, subs=pt).tolist(), dtype=float)).max()
        assert np.abs(vals).max() <= 1e-30 * scale


def _old_exprs(fam, new, mapping):
    from symfisher.parse import parse_expr

    table = {p.name: p for p in new.params}
    return [
        parse_expr(mapping[p.name], table) if p.name in mapping else table[p.name]
        for p in fam.params
    ]


def test_reparameterised_normal_matches_catalog_logstd():
    new = sf.reparameterize(sf.family("normal"), {"sigma": "exp(omega)"})
    assert new.param_names == ("mu", "omega")
    got = sf.derive(new).fisher_at({"mu": 0.2, "omega": -0.7})
    want = sf.derive("normal_logstd").fisher_at({"mu": 0.2, "omega": -0.7})
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-14)


def test_reparameterize_errors():
    with pytest.raises(FamilyError, match="unknown parameter"):
        sf.reparameterize(sf.family("normal"), {"tau": "exp(omega)"})
    with pytest.raises(FamilyError, match="leaves the domain of sigma"):
        sf.reparameterize(sf.family("normal"), {"sigma": "omega"})  # omega real


def test_cramer_rao_bound_of_parameters_and_of_a_function():
    d = sf.derive("normal")
    mu, sigma = d.family.params
    n = sp.Symbol("n", positive=True)
    bound = d.cramer_rao(n)
    assert sp.simplify(bound - sp.diag(sigma**2 / n, sigma**2 / (2 * n))) == sp.zeros(
        2, 2
    )
    # g = sigma^2 (the variance): (2 sigma)^2 * sigma^2 / (2 n) = 2 sigma^4 / n
    assert sp.simplify(d.cramer_rao(n, g="sigma**2") - 2 * sigma**4 / n) == 0
    # g = mu / sigma (signal to noise): 1/n + mu^2 / (2 n sigma^2)
    expected = (1 + mu**2 / (2 * sigma**2)) / n
    assert sp.simplify(d.cramer_rao(n, g=mu / sigma) - expected) == 0


def test_cramer_rao_rejects_bad_n_and_singular_fisher():
    with pytest.raises(DomainError, match="n must be a positive integer"):
        sf.derive("normal").cramer_rao(0)
    with pytest.raises(DerivationError, match="singular"):
        sf.derive("categorical_softmax").cramer_rao(10)


def test_natural_gradient_invertible_and_singular():
    d = sf.derive("normal")
    _mu, sigma = d.family.params
    ng = d.natural_gradient([1, 1])
    assert sp.simplify(ng - sp.Matrix([sigma**2, sigma**2 / 2])) == sp.zeros(2, 1)
    num = d.natural_gradient([1.0, 2.0], point={"mu": 0.0, "sigma": 2.0})
    np.testing.assert_allclose(num, [4.0, 4.0])

    soft = sf.derive("categorical_softmax", K=3)
    pt = {"z_0": 0.1, "z_1": -0.4, "z_2": 0.9}
    z = np.array(list(pt.values()))
    p = np.exp(z) / np.exp(z).sum()
    g = p * np.array([1.0, -2.0, 0.5]) - p * (
        p @ np.array([1.0, -2.0, 0.5])
    )  # in range(F)
    x = soft.natural_gradient(list(g), point=pt)
    F = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(F @ x, g, atol=1e-14)
    assert abs(x.sum()) < 1e-12  # minimum-norm: orthogonal to the null direction
    sym = soft.natural_gradient(["1", "-1", "0"])
    sub = {s: v for s, v in zip(soft.family.params, pt.values(), strict=False)}
    np.testing.assert_allclose(
        np.array(sym.evalf(30, subs=sub).tolist(), dtype=float).ravel(),
        soft.natural_gradient([1, -1, 0], point=pt),
        rtol=1e-12,
        atol=1e-14,
    )


def test_natural_gradient_wrong_length():
    with pytest.raises(DomainError, match="gradient must have 2 entries"):
        sf.derive("normal").natural_gradient([1, 2, 3])


def test_uniform_is_reported_non_regular_with_actual_values():
    d = sf.derive("uniform")
    (theta,) = d.family.params
    assert d.regular is False
    assert d.fisher is None
    assert sp.simplify(d.mean_score[0] + 1 / theta) == 0  # E[s] = -1/theta, not 0
    assert sp.simplify(d.routes["score_covariance"][0] - theta**-2) == 0
    assert sp.simplify(d.routes["neg_expected_hessian"][0] + theta**-2) == 0
    assert d.agreement[("score_covariance", "neg_expected_hessian")] == "differs"
    assert "support" in d.regularity and "depends on theta" in d.regularity
    with pytest.raises(DerivationError, match="non-regular"):
        d.fisher_at({"theta": 2.0})
    with pytest.raises(DerivationError, match="non-regular"):
        d.cramer_rao(10)


def test_user_family_with_parameter_dependent_support_is_non_regular():
    fam = sf.define_family(
        "shifted_exp", "-(x - m)", params={"m": "real"}, support="interval(m, oo)"
    )
    d = sf.derive(fam)
    assert not d.regular
    assert "depends on m" in d.regularity
