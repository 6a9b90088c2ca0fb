"""Policy Fisher E_s[F(s)] by three routes, against independently built closed forms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

from symfisher.derive.approximations import approximations
from symfisher.derive.policy_derivation import derive_policy
from symfisher.errors import DerivationError, FamilyError
from symfisher.families.policies import policies, policy
from symfisher.families.states import GaussianStates, NotPolynomialInStates

NAMES = policies()


@pytest.fixture(scope="module", params=NAMES)
def d(request):
    return derive_policy(request.param)


def test_catalog_names():
    assert NAMES == ["linear_softmax", "linear_gaussian", "tabular_softmax"]


def test_routes_agree_and_mean_score_zero(d):
    assert d.fisher is not None
    assert set(d.agreement.values()) <= {"proved", "tested"}, d.agreement_detail
    assert set(d.conditional_agreement.values()) <= {"proved", "tested"}
    assert d.mean_score_status in ("proved", "tested")
    for r in d.routes.values():
        assert r.matrix is not None, r.method
        assert "E_s:" in r.method


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _reference(name, theta, rho):
    """E_s[F(s)] written out by hand (numpy), independent of the derivation."""
    if name == "linear_gaussian":  # theta = [w1, w2, b, omega]; Sigma default
        S = np.array([[1.0, 0.3], [0.3, 1.0]])
        v = np.exp(-2 * theta[3])
        F = np.zeros((4, 4))
        F[:2, :2] = S * v
        F[2, 2] = v
        F[3, 3] = 2.0
        return F, {"Sigma_11": 1.0, "Sigma_12": 0.3, "Sigma_22": 1.0}
    if name == "linear_softmax":  # W is 2x2, states e0 (w.p. rho), e0+e1
        W = theta.reshape(2, 2)
        F = np.zeros((4, 4))
        for phi, w in ((np.array([1.0, 0.0]), rho), (np.array([1.0, 1.0]), 1 - rho)):
            p = _softmax(W @ phi)
            F += w * np.kron(np.diag(p) - np.outer(p, p), np.outer(phi, phi))
        return F, {"rho": rho}
    T = theta.reshape(2, 2)  # tabular: block diagonal rho_s (diag p_s - p_s p_s^T)
    F = np.zeros((4, 4))
    for s, w in ((0, rho), (1, 1 - rho)):
        p = _softmax(T[s])
        F[2 * s : 2 * s + 2, 2 * s : 2 * s + 2] = w * (np.diag(p) - np.outer(p, p))
    return F, {"rho": rho}


@pytest.mark.parametrize("seed", [0, 1])
def test_fisher_matches_hand_written_reference(d, seed):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.8, size=d.policy.n_params)
    want, dist = _reference(d.policy.name, theta, rho=0.3)
    point = {p.name: float(v) for p, v in zip(d.policy.theta, theta, strict=True)}
    got = d.fisher_at(point | dist)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_gaussian_states_moments():
    s1, s2 = sp.symbols("s1 s2", real=True)
    m1, v = sp.Symbol("m1", real=True), sp.Symbol("v", positive=True)
    st = GaussianStates(
        symbols=(s1, s2),
        mean=sp.Matrix([m1, 0]),
        cov=sp.Matrix([[v, 0], [0, 1]]),
        params=(m1, v),
        domains=(sp.Reals, sp.Interval.open(0, sp.oo)),
        default=(0.0, 1.0),
    )
    got = st.expect([s1 * s1, s1 * s2, s1**4, 3 + s2])
    want = [v + m1**2, 0, m1**4 + 6 * m1**2 * v + 3 * v**2, 3]
    assert all(sp.simplify(g - w) == 0 for g, w in zip(got, want, strict=True))
    with pytest.raises(NotPolynomialInStates, match="not a polynomial"):
        st.expect([sp.exp(s1)])


def test_softmax_under_gaussian_states_is_unresolved_and_says_so():
    pol = policy("linear_softmax")
    phi = pol.state_symbols
    gauss = GaussianStates(
        symbols=phi,
        mean=sp.zeros(2, 1),
        cov=sp.eye(2),
        params=(),
        domains=(),
        default=(),
    )
    pol = dataclasses.replace(pol, name="linear_softmax_gaussian", states=gauss)
    d = derive_policy(pol, use_cache=False, seconds=5)
    assert d.fisher is None
    assert d.fisher_state is not None  # F(s) is still closed form
    assert all("unresolved" in m for m in d.provenance.values()), d.provenance
    with pytest.raises(DerivationError, match="state samples"):
        d.fisher_at({p.name: 0.0 for p in pol.theta})


def test_approximations_linear_gaussian_exact_errors():
    a = approximations(derive_policy("linear_gaussian"))
    assert a.kfac_error2 == 0  # G = diag(e^{-2 omega}) does not depend on s
    S12, om = sp.Symbol("Sigma_12", real=True), sp.Symbol("omega_1", real=True)
    assert sp.simplify(a.diagonal_error2 - 2 * S12**2 * sp.exp(-4 * om)) == 0


@pytest.mark.parametrize("name", ["linear_softmax", "tabular_softmax"])
def test_approximations_softmax_kfac_error_matches_numeric(name):
    d = derive_policy(name)
    a = approximations(d)
    rng = np.random.default_rng(3)
    theta = rng.normal(0, 0.8, size=4)
    F, dist = _reference(name, theta, rho=0.3)
    L, R = (np.zeros((2, 2)), np.zeros((2, 2)))
    if name == "linear_softmax":
        W = theta.reshape(2, 2)
        for phi, w in ((np.array([1.0, 0.0]), 0.3), (np.array([1.0, 1.0]), 0.7)):
            p = _softmax(W @ phi)
            L += w * (np.diag(p) - np.outer(p, p))
            R += w * np.outer(phi, phi)
    else:
        T = theta.reshape(2, 2)
        L = np.diag([0.3, 0.7])
        for s, w in ((0, 0.3), (1, 0.7)):
            p = _softmax(T[s])
            R += w * (np.diag(p) - np.outer(p, p))
    K = np.kron(L, R)
    sub = d.substitution(
        {p.name: float(v) for p, v in zip(d.policy.theta, theta, strict=True)} | dist
    )
    got = float(a.kfac_error2.evalf(30, subs=sub))
    assert got == pytest.approx(float(np.sum((K - F) ** 2)), rel=1e-10)
    assert got > 1e-6  # K-FAC is not exact for softmax policies
    diag = float(a.diagonal_error2.evalf(30, subs=sub))
    assert diag == pytest.approx(
        float(np.sum((np.diag(np.diag(F)) - F) ** 2)), rel=1e-10
    )


def test_bad_policy_names_and_sizes():
    with pytest.raises(FamilyError, match="unknown policy 'nope'"):
        policy("nope")
    with pytest.raises(FamilyError, match=r"takes \['K', 'd'\]"):
        policy("linear_softmax", n=3)
    with pytest.raises(FamilyError, match="K must be an integer >= 2"):
        policy("linear_softmax", K=1)


def test_derivation_is_cached(d):
    again = derive_policy(d.policy.name)
    assert again is d
