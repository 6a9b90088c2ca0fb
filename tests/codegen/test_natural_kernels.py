"""``natural_gradient`` and ``fisher_sqrt`` of every generated family module.

References are independent of the kernels' formulas: a pivoted LU solve
(``numpy.linalg.solve``) or SVD pseudo-inverse (``numpy.linalg.pinv``) of the
dense ``fisher`` plus the damping, in float64. Both sides are backward stable,
so they may differ by about ``cond(F + lambda I) * eps``: the tolerance is
``max(rtol, 16 * cond * eps)`` with ``rtol`` = 1e-10 (float64) or 1e-5 (float32).
"""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symfisher as sf
from symfisher.derive.numeric import random_point
from tests.conftest import CATALOG

jax.config.update("jax_enable_x64", True)

WITH_FISHER = [n for n in CATALOG if n != "uniform"]
#: families whose Fisher is singular: softmax logits (F 1 = 0)
SINGULAR = {"categorical_softmax"}
RTOL = {"float64": 1e-10, "float32": 1e-5}
DAMPINGS = (0.0, 1e-3, 0.5)

#: points where F is ill-conditioned (the limit of the closed forms' accuracy)
NEAR_SINGULAR = {
    "gamma": [[400.0, 2.0], [0.01, 3.0]],
    "beta": [[300.0, 200.0], [0.02, 0.05]],
    "von_mises": [[0.3, 0.02], [1.0, 60.0]],
    "categorical": [[1e-6, 0.5], [0.499, 0.5]],
    "categorical_softmax": [[12.0, -9.0, 0.0], [0.0, 0.0, 20.0]],
    "bernoulli": [[1e-7], [1 - 1e-7]],
    "normal": [[0.0, 1e-3], [1.0, 1e3]],
    "full_gaussian": [[0.0, 0.0, 3.0, 40.0, -3.0]],
}


def _points(name: str, n: int = 4) -> np.ndarray:
    fam = sf.family(name)  # the definition: no derivation needed
    rng = random.Random(f"natural:{name}")
    pts = [random_point(fam, rng) for _ in range(n)]
    return np.array([[float(pt[p]) for p in fam.params] for pt in pts])


def _g(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


def _reference(F: np.ndarray, g: np.ndarray, damping: float, singular: bool):
    """(F + lambda I)^-1 g per point (pinv where F is singular and undamped), cond."""
    xs, conds = [], []
    for Fi, gi in zip(
        F.reshape(-1, *F.shape[-2:]), g.reshape(-1, g.shape[-1]), strict=False
    ):
        A = Fi + damping * np.eye(len(Fi))
        if singular and damping == 0:
            xs.append(np.linalg.pinv(A, hermitian=True) @ gi)
            ev = np.linalg.eigvalsh(A)
            ev = ev[ev > 1e-12 * ev.max()]
            conds.append(ev.max() / ev.min())
        else:
            xs.append(np.linalg.solve(A, gi))
            conds.append(np.linalg.cond(A))
    return np.array(xs).reshape(g.shape), np.array(conds)


def _assert_solution(got, want, conds, dtype):
    eps = np.finfo(dtype).eps
    got, want = np.asarray(got, float).reshape(want.shape), want
    for gi, wi, c in zip(
        got.reshape(-1, got.shape[-1]),
        want.reshape(-1, want.shape[-1]),
        conds,
        strict=False,
    ):
        tol = max(RTOL[dtype], 16 * c * eps)
        err = np.linalg.norm(gi - wi) / np.linalg.norm(wi)
        assert err <= tol, f"relative error {err:.2e} > {tol:.1e} (cond {c:.1e})"


def _check(name, theta, damping, dtype):
    k = sf.kernels(name)
    g = _g(theta.shape, seed=len(theta))
    F64 = np.asarray(k.fisher(jnp.asarray(theta.astype(dtype), jnp.float64)))
    want, conds = _reference(
        F64, g.astype(dtype).astype(float), damping, name in SINGULAR
    )
    got = k.natural_gradient(jnp.asarray(theta, dtype), jnp.asarray(g, dtype), damping)
    assert got.dtype == jnp.dtype(dtype) and got.shape == theta.shape
    _assert_solution(got, want, conds, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("damping", DAMPINGS)
@pytest.mark.parametrize("name", WITH_FISHER)
def test_natural_gradient_equals_dense_solve(name, damping, dtype):
    _check(name, _points(name), damping, dtype)


@pytest.mark.parametrize("damping", (0.0, 1e-3))
@pytest.mark.parametrize("name", sorted(NEAR_SINGULAR))
def test_natural_gradient_near_singular_points(name, damping):
    _check(name, np.array(NEAR_SINGULAR[name]), damping, "float64")


@pytest.mark.parametrize("K", [2, 16, 128])
@pytest.mark.parametrize("damping", DAMPINGS)
@pytest.mark.parametrize("name", ["categorical_softmax", "categorical"])
def test_natural_gradient_any_number_of_classes(name, K, damping):
    rng = np.random.default_rng(K)
    if name == "categorical":
        theta = rng.dirichlet(np.ones(K), size=3)[:, :-1]
    else:
        theta = rng.normal(scale=2.0, size=(3, K))
    _check(name, theta, damping, "float64")


@pytest.mark.parametrize("d", [1, 16])
@pytest.mark.parametrize("damping", DAMPINGS)
def test_natural_gradient_diag_gaussian_any_dimension(d, damping):
    theta = np.random.default_rng(d).normal(size=(3, 2 * d))
    _check("diag_gaussian", theta, damping, "float64")


def test_softmax_undamped_is_the_minimum_norm_solution():
    k = sf.kernels("categorical_softmax")
    theta = jnp.array([0.3, -1.0, 2.0, 0.0])
    g = jnp.array([1.0, 2.0, -0.5, 4.0])  # not in the range of F (sum != 0)
    x = k.natural_gradient(theta, g)
    F = k.fisher(theta)
    assert abs(float(jnp.sum(x))) < 1e-12  # orthogonal to the null space 1
    gc = g - jnp.mean(g)  # the projection of g on the range of F
    np.testing.assert_allclose(F @ x, gc, rtol=1e-12, atol=1e-12)


def test_softmax_damped_solution_grows_along_the_null_space():
    """(F + lam I) x = g holds even for the component of g along 1 (x has it / lam)."""
    k = sf.kernels("categorical_softmax")
    theta = jnp.array([0.3, -1.0, 2.0])
    g = jnp.array([1.0, 1.0, 1.0])
    x = k.natural_gradient(theta, g, 1e-3)
    np.testing.assert_allclose(x, g / 1e-3, rtol=1e-12)


@pytest.mark.parametrize("name", WITH_FISHER)
def test_natural_gradient_broadcasts_and_jits(name):
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name, 3))
    g = jnp.asarray(_g((2, 1, theta.shape[-1]), 5))
    got = jax.jit(k.natural_gradient)(theta, g, 0.1)
    assert got.shape == (2, 3, theta.shape[-1])
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(
                got[i, j], k.natural_gradient(theta[j], g[i, 0], 0.1), rtol=1e-13
            )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", WITH_FISHER)
def test_fisher_sqrt_squares_to_fisher(name, dtype):
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name), dtype)
    L = k.fisher_sqrt(theta)
    F = np.asarray(k.fisher(theta.astype(jnp.float64)))
    assert L.dtype == jnp.dtype(dtype) and L.shape[-1] == theta.shape[-1]
    LtL = np.einsum("...ri,...rj->...ij", np.asarray(L, float), np.asarray(L, float))
    scale = np.max(np.abs(F), axis=(-2, -1), keepdims=True)
    err = np.max(np.abs(LtL - F) / scale)
    assert err <= {"float64": 1e-12, "float32": 2e-6}[dtype], err


@pytest.mark.parametrize(
    "name", ["categorical_softmax", "categorical", "diag_gaussian"]
)
def test_fisher_sqrt_any_size(name):
    k = sf.kernels(name)
    rng = np.random.default_rng(3)
    theta = {
        "categorical_softmax": rng.normal(size=(2, 64)),
        "categorical": rng.dirichlet(np.ones(64), size=2)[:, :-1],
        "diag_gaussian": rng.normal(size=(2, 32)),
    }[name]
    L = np.asarray(k.fisher_sqrt(jnp.asarray(theta)))
    F = np.asarray(k.fisher(jnp.asarray(theta)))
    np.testing.assert_allclose(
        np.einsum("...ri,...rj->...ij", L, L), F, rtol=1e-12, atol=1e-13 * F.max()
    )


DOMAIN_BOUND = {"gamma": [-1.0, 2.0], "beta": [1.0, 0.0], "categorical": [0.7, 0.6]}


@pytest.mark.parametrize("name", sorted(DOMAIN_BOUND))
def test_nan_outside_the_domain(name):
    k = sf.kernels(name)
    theta = jnp.array(DOMAIN_BOUND[name])
    assert bool(jnp.all(jnp.isnan(k.natural_gradient(theta, jnp.ones(2), 0.1))))
    assert bool(jnp.all(jnp.isnan(k.fisher_sqrt(theta))))


@pytest.mark.parametrize("name", ["gamma", "categorical_softmax", "diag_gaussian"])
@pytest.mark.parametrize("damping", [-1e-3, float("nan"), float("inf")])
def test_bad_damping_is_refused(name, damping):
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name, 1)[0])
    with pytest.raises(ValueError, match="damping must be finite and >= 0"):
        k.natural_gradient(theta, jnp.ones_like(theta), damping)


@pytest.mark.parametrize("name", ["gamma", "categorical_softmax"])
def test_bad_gradient_is_refused(name):
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name, 1)[0])
    with pytest.raises(TypeError, match="g must be a floating array"):
        k.natural_gradient(theta, jnp.ones(theta.shape, jnp.int32))
    with pytest.raises(ValueError, match=r"g\.shape"):
        k.natural_gradient(theta, jnp.ones((0,)))


def test_non_regular_family_has_neither():
    k = sf.kernels("uniform")
    for call in (
        lambda: k.natural_gradient(jnp.array([1.0]), jnp.array([1.0])),
        lambda: k.fisher_sqrt(jnp.array([1.0])),
    ):
        with pytest.raises(NotImplementedError, match="non-regular"):
            call()
    assert k.PROVENANCE["natural_gradient"].startswith("not available")


@pytest.mark.parametrize("name", ["categorical_softmax", "categorical", "gamma"])
def test_traced_and_known_damping_agree(name):
    """A damping passed through jit (traced) takes the general path: same numbers."""
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name, 3))
    g = jnp.asarray(_g(theta.shape, 8))
    for lam in (0.0, 1e-3):
        known = jax.jit(lambda t, v, lam=lam: k.natural_gradient(t, v, lam))(theta, g)
        traced = jax.jit(k.natural_gradient)(theta, g, lam)
        np.testing.assert_allclose(known, traced, rtol=1e-12)


@pytest.mark.parametrize("name", ["categorical_softmax", "gamma", "diag_gaussian"])
def test_negative_damping_is_refused_under_jit(name):
    k = sf.kernels(name)
    theta = jnp.asarray(_points(name, 1)[0])
    with pytest.raises(ValueError, match="damping must be finite and >= 0"):
        jax.jit(lambda t: k.natural_gradient(t, jnp.ones_like(t), -1.0))(theta)
