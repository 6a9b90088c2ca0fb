"""Properties of every catalog derivation: routes, score, Fisher, KL."""

import random

import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point
from tests.conftest import CATALOG

REGULAR = [n for n in CATALOG if n != "uniform"]


@pytest.fixture(scope="module")
def derived():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = sf.derive(name)
        return cache[name]

    return get


def _points(fam, n=4, seed=0):
    rng = random.Random(f"{seed}-{fam.name}")
    return [random_point(fam, rng) for _ in range(n)]


def _num(M, pt, digits=30):
    sub = {p: sp.Float(v, digits) for p, v in pt.items()}
    return np.array(M.evalf(digits, subs=sub).tolist(), dtype=float)


@pytest.mark.parametrize("name", REGULAR)
def test_every_resolved_pair_of_routes_agrees(derived, name):
    d = derived(name)
    statuses = set(d.agreement.values())
    assert "differs" not in statuses, d.agreement_detail
    resolved = [r for r, m in d.routes.items() if m is not None]
    assert len(resolved) >= 2, f"{name}: only {resolved} resolved"
    assert d.fisher is not None


@pytest.mark.parametrize("name", REGULAR)
def test_mean_score_is_zero(derived, name):
    d = derived(name)
    assert d.mean_score_status in ("proved", "tested")
    for pt in _points(d.family, 2):
        np.testing.assert_allclose(_num(d.mean_score, pt), 0, atol=1e-20)


@pytest.mark.parametrize("name", REGULAR)
def test_fisher_symmetric_psd_at_random_points(derived, name):
    d = derived(name)
    for pt in _points(d.family):
        F = _num(d.fisher, pt)
        np.testing.assert_allclose(F, F.T, rtol=0, atol=1e-14 * np.abs(F).max())
        eig = np.linalg.eigvalsh(F)
        assert eig.min() >= -1e-12 * eig.max(), eig
        if name != "categorical_softmax":
            assert eig.min() > 0, f"{name}: Fisher should be positive definite"


def test_softmax_fisher_is_singular_along_ones(derived):
    d = derived("categorical_softmax")
    for pt in _points(d.family):
        F = _num(d.fisher, pt)
        np.testing.assert_allclose(F @ np.ones(F.shape[0]), 0, atol=1e-15)


SCALAR = [n for n in REGULAR if n not in ("diag_gaussian", "full_gaussian")]


@pytest.mark.parametrize("name", SCALAR)
def test_every_route_matches_numeric_quadrature(derived, name):
    """Closed forms against mpmath quadrature of E[s s^T] (an independent route)."""
    d = derived(name)
    from symfisher.derive.numeric import fisher_numeric

    pt = _points(d.family, 1, seed=7)[0]
    num, _err = fisher_numeric(d.family, list(d.score), pt)
    num = np.array([[float(v) for v in row] for row in num])
    for r, M in d.routes.items():
        if M is not None:
            np.testing.assert_allclose(
                _num(M, pt), num, rtol=1e-10, atol=1e-12, err_msg=f"route {r}"
            )


def _gaussian_mean_cov(fam):
    """mu and Sigma written here from the parameter names, not from the family."""
    by = {p.name: p for p in fam.params}
    d = len(fam.variables)
    mu = sp.Matrix([by[f"mu_{i}"] for i in range(1, d + 1)])
    if fam.name == "diag_gaussian":
        return mu, sp.diag(*[sp.exp(2 * by[f"omega_{i}"]) for i in range(1, d + 1)])
    L = sp.zeros(d, d)
    for i in range(d):
        for j in range(i + 1):
            s = by[f"l_{i + 1}{j + 1}"]
            L[i, j] = sp.exp(s) if i == j else s
    return mu, L * L.T


@pytest.mark.parametrize("name", ["diag_gaussian", "full_gaussian"])
def test_multivariate_gaussian_matches_general_formula(derived, name):
    r"""F_ij = d_i mu^T S^-1 d_j mu + 1/2 tr(S^-1 d_i S S^-1 d_j S)."""
    d = derived(name)
    mu, S = _gaussian_mean_cov(d.family)
    Sinv = S.inv()
    P = d.family.params
    F = sp.Matrix(
        len(P),
        len(P),
        lambda i, j: (
            (mu.diff(P[i]).T * Sinv * mu.diff(P[j]))[0, 0]
            + (Sinv * S.diff(P[i]) * Sinv * S.diff(P[j])).trace() / 2
        ),
    )
    for pt in _points(d.family, 3, seed=3):
        np.testing.assert_allclose(
            _num(d.fisher, pt), _num(F, pt), rtol=1e-12, atol=1e-14
        )


NO_CLOSED_KL = ("student_t",)


@pytest.mark.parametrize("name", NO_CLOSED_KL)
def test_kl_without_closed_form_gets_the_quadrature_route_3(derived, name):
    """No closed-form KL: route 3 is the Hessian of the quadrature KL, and tested."""
    d = derived(name)
    assert d.kl is None
    assert d.routes["kl_hessian"] is None
    method, detail, _ = d.provenance["kl_hessian"]
    assert method == "Hessian of the quadrature KL (numeric, 50 digits)"
    assert "random points" in detail
    for pair in [
        ("score_covariance", "kl_hessian"),
        ("neg_expected_hessian", "kl_hessian"),
    ]:
        assert d.agreement[pair] == "tested", d.agreement_detail[pair]
        assert "quadrature KL" in d.agreement_detail[pair]
    assert d.fisher is not None


@pytest.mark.parametrize("name", [n for n in CATALOG if n not in NO_CLOSED_KL])
def test_kl_is_zero_at_equal_and_positive_at_distinct_points(derived, name):
    d = derived(name)
    assert d.kl is not None, f"{name}: KL unresolved"
    fam = d.family
    for p, q in zip(_points(fam, 3, 1), _points(fam, 3, 2), strict=True):
        if not d.regular:  # KL(U(0,a)||U(0,b)) is finite only for b >= a
            key = fam.params[0]
            p, q = ({key: min(p[key], q[key])}, {key: max(p[key], q[key])})
        same = {
            **{a: sp.Float(v, 30) for a, v in p.items()},
            **{
                b: sp.Float(p[a], 30)
                for a, b in zip(fam.params, d.kl_primed, strict=False)
            },
        }
        other = {
            **{a: sp.Float(v, 30) for a, v in p.items()},
            **{
                b: sp.Float(q[a], 30)
                for a, b in zip(fam.params, d.kl_primed, strict=False)
            },
        }
        assert abs(float(d.kl.evalf(30, subs=same))) < 1e-20
        assert float(d.kl.evalf(30, subs=other)) > 0


def test_tanh_gaussian_fisher_equals_underlying_gaussian(derived):
    """Found by the derivation (change of variable), not declared."""
    t = derived("tanh_gaussian")
    n = derived("normal")
    sub = dict(zip(n.family.params, t.family.params, strict=False))
    assert sp.simplify(t.fisher - n.fisher.subs(sub)) == sp.zeros(2, 2)
    assert all(s == "proved" for s in t.agreement.values())
