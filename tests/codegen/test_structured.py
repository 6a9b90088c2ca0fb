"""Structured kernels: size from the input shape, O(d)/O(K) products, no dense matrix."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symfisher as sf
from symfisher.derive.numeric import random_point

jax.config.update("jax_enable_x64", True)

SIZED = [
    ("categorical_softmax", {"K": 5}),
    ("categorical", {"K": 5}),
    ("diag_gaussian", {"d": 3}),
]


def _num(m):
    return np.array(sp.Matrix(m).tolist(), dtype=float)


@pytest.mark.parametrize(("name", "size"), SIZED, ids=[s[0] for s in SIZED])
def test_structured_kernels_equal_the_dense_derivation_at_another_size(name, size):
    d = sf.derive(name, **size)
    fam = d.family
    k = sf.kernels(name)
    rng = random.Random(f"structured:{name}")
    for _ in range(2):
        pt, q = random_point(fam, rng), random_point(fam, rng)
        sub = {p: sp.Float(v, 50) for p, v in pt.items()}
        sub.update(
            {
                s: sp.Float(q[p], 50)
                for s, p in zip(d.kl_primed, fam.params, strict=True)
            }
        )
        if fam.is_finite:
            xs = [rng.randrange(0, size["K"])]
        else:
            xs = [rng.uniform(-2, 2) for _ in fam.variables]
        sub.update({v: sp.Float(x, 50) for v, x in zip(fam.variables, xs, strict=True)})
        theta = jnp.array([pt[p] for p in fam.params])
        theta_q = jnp.array([q[p] for p in fam.params])
        x = jnp.array(xs[0] if len(xs) == 1 else xs, dtype=float)
        F = _num(d.fisher.evalf(50, subs=sub))
        np.testing.assert_allclose(k.fisher(theta), F, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            k.fisher_diag(theta), np.diag(F), rtol=1e-12, atol=1e-14
        )
        v = np.linspace(-1, 1, len(theta))
        np.testing.assert_allclose(
            k.fvp(theta, jnp.asarray(v)), F @ v, rtol=1e-12, atol=1e-14
        )
        np.testing.assert_allclose(
            k.kl(theta, theta_q), float(d.kl.evalf(50, subs=sub)), rtol=1e-12
        )
        np.testing.assert_allclose(
            k.entropy(theta), float(d.entropy.evalf(50, subs=sub)), rtol=1e-12
        )
        np.testing.assert_allclose(
            k.log_prob(theta, x), float(fam.log_density.evalf(50, subs=sub)), rtol=1e-12
        )
        np.testing.assert_allclose(
            k.score(theta, x),
            _num(d.score.evalf(50, subs=sub)).ravel(),
            rtol=1e-12,
            atol=1e-14,
        )
        np.testing.assert_allclose(
            k.hessian_log_prob(theta, x),
            _num(d.hessian.evalf(50, subs=sub)),
            rtol=1e-12,
            atol=1e-14,
        )


def _theta(name, n, rng):
    if name == "categorical_softmax":
        return jnp.asarray(rng.normal(size=n))
    if name == "categorical":
        p = rng.dirichlet(np.ones(n + 1))
        return jnp.asarray(p[:-1])
    return jnp.asarray(np.concatenate([rng.normal(size=n), rng.uniform(-1, 1, size=n)]))


@pytest.mark.parametrize(
    "name", ["categorical_softmax", "categorical", "diag_gaussian"]
)
@pytest.mark.parametrize("n", [16, 64])
def test_large_sizes_fisher_is_kl_hessian_and_fvp_matches(name, n):
    rng = np.random.default_rng(n)
    k = sf.kernels(name)
    theta = _theta(name, n, rng)
    F = k.fisher(theta)
    H = jax.hessian(k.kl, argnums=1)(theta, theta)
    np.testing.assert_allclose(F, H, rtol=1e-10, atol=1e-13)
    v = jnp.asarray(rng.normal(size=theta.shape))
    np.testing.assert_allclose(k.fvp(theta, v), F @ v, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        k.fisher_diag(theta), jnp.diag(F), rtol=1e-12, atol=1e-15
    )
    if name != "categorical_softmax":
        np.testing.assert_allclose(
            k.cramer_rao(theta, 1) @ F, np.eye(len(theta)), atol=1e-9
        )
    else:  # Moore-Penrose pseudo-inverse of the singular softmax Fisher
        np.testing.assert_allclose(
            k.cramer_rao(theta, 1), np.linalg.pinv(F), rtol=1e-8, atol=1e-10
        )


def _shapes(jaxpr):
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield tuple(var.aval.shape)
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else ():
            yield from _shapes(sub)


@pytest.mark.parametrize(
    "name", ["categorical_softmax", "categorical", "diag_gaussian"]
)
@pytest.mark.parametrize("fn", ["fvp", "fisher_diag"])
def test_structured_products_never_form_the_matrix(name, fn):
    """No intermediate of fvp or fisher_diag holds P x P numbers (P = 300 here)."""
    k = sf.kernels(name)
    theta = _theta(
        name, 300 if name != "diag_gaussian" else 150, np.random.default_rng(0)
    )
    P = theta.shape[-1]
    f = (lambda t: k.fvp(t, t)) if fn == "fvp" else k.fisher_diag
    jaxpr = jax.make_jaxpr(f)(theta).jaxpr
    biggest = max(int(np.prod(s)) for s in _shapes(jaxpr))
    assert biggest <= 4 * P, f"{fn} forms an intermediate of {biggest} elements"
    # the dense fisher does form it: the check can fail
    dense = max(int(np.prod(s)) for s in _shapes(jax.make_jaxpr(k.fisher)(theta).jaxpr))
    assert dense >= P * P


def test_diag_gaussian_needs_an_even_number_of_parameters():
    k = sf.kernels("diag_gaussian")
    with pytest.raises(ValueError, match="positive multiple of 2"):
        k.fisher(jnp.ones(5))


def test_softmax_extreme_logits_stay_finite():
    k = sf.kernels("categorical_softmax")
    z = jnp.array([1e4, -1e4, 0.0, 3.0])
    for out in (
        k.fisher(z),
        k.fvp(z, jnp.ones(4)),
        k.kl(z, -z),
        k.log_prob(z, 1),
        k.score(z, 2),
    ):
        assert np.all(np.isfinite(out)) or np.isneginf(out).all()
    np.testing.assert_allclose(k.log_prob(z, 1), -2e4, rtol=1e-15)
    assert k.log_prob(z, 7) == -np.inf  # outside 0..K-1


def _softmax_fisher_mp(z: np.ndarray) -> np.ndarray:
    """``diag(p) - p p^T`` at the exact binary values of ``z``, mpmath at 50 digits."""
    import mpmath

    with mpmath.workdps(50):
        e = [mpmath.exp(mpmath.mpf(float(x))) for x in z]
        s = mpmath.fsum(e)
        p = [x / s for x in e]
        n = len(p)
        return np.array(
            [
                [float((p[i] if i == j else 0) - p[i] * p[j]) for j in range(n)]
                for i in range(n)
            ]
        )


SOFTMAX_NEAR_ONE = [
    # p_0 = 1 - 2 e^-g - e^-(g+0.5): 1 - p_0 below float32's epsilon from g = 17 on
    *([0.0, -g, -g - 0.5, -g] for g in (5.0, 17.0, 40.0, 80.0)),
    [0.0, 0.0, -30.0],  # two top classes (p = 1/2 each)
    [3.0, 3.0, 3.0, 3.0],  # all tied
    [20.0, -1.0],  # K = 2
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("z", SOFTMAX_NEAR_ONE, ids=str)
def test_softmax_fisher_keeps_relative_accuracy_as_p_tends_to_1(z, dtype):
    """Every entry of ``fisher`` (and ``fisher_diag``) to a few ulps of its own size.

    ``F_00 = p_0 (1 - p_0)`` with ``1 - p_0`` below the dtype's epsilon is where
    ``p (1 - p)`` from a rounded ``p`` returns 0; the kernels must not.
    """
    k = sf.kernels("categorical_softmax")
    theta = np.asarray(z, dtype=dtype)
    want = _softmax_fisher_mp(theta)
    rtol = 16 * float(np.finfo(dtype).eps)
    atol = float(np.finfo(dtype).tiny)  # products like p_1 p_2 = e^-160 underflow
    got = np.asarray(k.fisher(theta))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(
        k.fisher_diag(theta), np.diagonal(want), rtol=rtol, atol=0
    )
    # and in a batch, under jit
    batch = np.stack([theta, theta[::-1]])
    got = np.asarray(jax.jit(k.fisher)(batch))
    np.testing.assert_allclose(got[0], want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[1], want[::-1, ::-1], rtol=rtol, atol=atol)
