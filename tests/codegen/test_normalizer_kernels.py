"""Kernels of families whose normaliser Z(theta) is a quadrature sum, against mpmath."""

import itertools

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import symfisher as sf
from symfisher.codegen.generate import module_text

jax.config.update("jax_enable_x64", True)

INF = mpmath.inf


def _moments_quartic(a, n=3):
    """``[Z, E[x], E[x^2], ...]`` of exp(a x - x^4), 40 digits, independently."""
    with mpmath.workdps(40):
        raw = [
            mpmath.quad(lambda x, k=k: x**k * mpmath.exp(a * x - x**4), [-INF, 0, INF])
            for k in range(n + 1)
        ]
        return [raw[0]] + [r / raw[0] for r in raw[1:]]


def _moments_cmp(lam, nu, n=3):
    """``[Z, E[k], E[k log k!], ...]`` of the Conway-Maxwell-Poisson, 40 digits."""
    with mpmath.workdps(40):

        def term(k):
            return lam**k / mpmath.factorial(k) ** nu

        z = mpmath.nsum(term, [0, INF])

        def e(f):
            return mpmath.nsum(lambda k: f(k) * term(k), [0, INF]) / z

        return z, e


FAMILIES = {
    "quartic": lambda: sf.define_family(
        "quartic", "a*x - x**4", params={"a": "real"}, normalize=True
    ),
    "cmp": lambda: sf.define_family(
        "cmp",
        "k*log(lam) - nu*loggamma(k + 1)",
        variable="k",
        params={"lam": "positive", "nu": "positive"},
        support="nonnegative_integers",
        normalize=True,
    ),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def generated(request, tmp_path_factory):
    fam = FAMILIES[request.param]()
    d = sf.derive(fam, seconds=30)
    out = tmp_path_factory.mktemp("normalizer")
    (out / f"{fam.name}.py").write_text(module_text(d), encoding="utf-8")
    return fam, sf.kernels(fam.name, path=out)


def _box_points(k):
    """Corners and centre of ``QUADRATURE_RANGES``, the range the accuracy is for."""
    box = list(k.QUADRATURE_RANGES.values())
    pts = [list(c) for c in itertools.product(*box)]
    pts.append([(lo + hi) / 2 for lo, hi in box])
    return pts


def test_provenance_names_the_quadrature_normaliser(generated):
    _, k = generated
    for fn in ("log_prob", "score", "hessian_log_prob"):
        assert k.PROVENANCE[fn].startswith(
            "quadrature (the normaliser Z(theta) only): "
        )
        assert k.QUADRATURE_ACCURACY[fn] <= 1e-10
    assert "absolute error of log Z" in k.log_prob.__doc__


def test_log_prob_score_and_hessian_against_mpmath(generated):
    fam, k = generated
    for p in _box_points(k):
        th = jnp.array(p)
        tol = k.QUADRATURE_ACCURACY["log_prob"]
        if fam.name == "quartic":
            (a,) = p
            z, m1, m2, _ = _moments_quartic(a)
            x = 0.3
            lp = a * x - x**4 - mpmath.log(z)
            score = [x - m1]
            hess = [[-(m2 - m1**2)]]
        else:
            lam, nu = p
            z, e = _moments_cmp(lam, nu)
            x = 2.0
            lg = mpmath.loggamma(3)
            lp = x * mpmath.log(lam) - nu * lg - mpmath.log(z)
            m_k = e(lambda j: j)
            m_lg = e(lambda j: mpmath.loggamma(j + 1))
            score = [x / lam - m_k / lam, -lg + m_lg]
            # d2/dlam2 log Z and mixed terms from the moments
            v_k = e(lambda j: j * j) - m_k**2
            c = e(lambda j: j * mpmath.loggamma(j + 1)) - m_k * m_lg
            v_lg = e(lambda j: mpmath.loggamma(j + 1) ** 2) - m_lg**2
            hess = [
                [-x / lam**2 - (v_k - m_k) / lam**2, c / lam],
                [c / lam, -v_lg],
            ]
        assert abs(float(k.log_prob(th, x)) - float(lp)) <= tol * max(1, abs(float(lp)))
        s = np.asarray(k.score(th, x))
        h = np.asarray(k.hessian_log_prob(th, x))
        scale = max(abs(float(v)) for v in score) + 1
        np.testing.assert_allclose(s, np.array(score, float), atol=10 * tol * scale)
        hs = max(abs(float(v)) for row in hess for v in row) + 1
        np.testing.assert_allclose(h, np.array(hess, float), atol=10 * tol * hs)


def test_fisher_is_minus_the_expected_hessian_and_autodiff_agrees(generated):
    fam, k = generated
    x = 0.3 if fam.name == "quartic" else 2.0
    for p in _box_points(k):
        th = jnp.array(p)
        g = jax.grad(lambda t: k.log_prob(t, x))(th)
        np.testing.assert_allclose(g, k.score(th, x), rtol=1e-12, atol=1e-12)
        H = jax.hessian(lambda t: k.log_prob(t, x))(th)
        np.testing.assert_allclose(H, k.hessian_log_prob(th, x), rtol=1e-10, atol=1e-10)
    if fam.name == "quartic":
        for p in _box_points(k):
            (a,) = p
            _, m1, m2, _ = _moments_quartic(a)
            F = float(k.fisher(jnp.array(p))[0, 0])
            assert abs(F - float(m2 - m1**2)) <= k.QUADRATURE_ACCURACY["fisher"] * F


def test_kernels_jit_and_vmap_over_a_batch(generated):
    fam, k = generated
    pts = jnp.array(_box_points(k))
    x = 0.3 if fam.name == "quartic" else 2.0
    batched = jax.jit(k.log_prob)(pts, jnp.full(pts.shape[0], x))
    single = jnp.stack([k.log_prob(p, x) for p in pts])
    np.testing.assert_allclose(batched, single, rtol=1e-14)
    assert k.fisher(pts).shape == (pts.shape[0], pts.shape[1], pts.shape[1])


def test_verify_passes_without_a_sampler(generated):
    fam, _ = generated
    rep = sf.verify(fam, seed=0)
    summary = rep.summary() if hasattr(rep, "summary") else rep
    assert summary[fam.name]["passed"], summary
