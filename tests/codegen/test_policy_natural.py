"""``natural_gradient`` and ``fisher_sqrt`` of the policy kernel modules.

References: ``numpy.linalg.solve`` / ``pinv`` of the dense ``fisher`` (plus the
damping) in float64; for ``linear_softmax``, whose natural gradient is the K-FAC
approximation, the solve of ``kfac_fisher`` and the exact Fisher where K-FAC is
exact. Tolerances as in ``test_natural_kernels``: ``max(rtol, 16 cond eps)``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symfisher as sf
from symfisher.codegen.policy_module import POLICY_NAMES
from tests.codegen.test_natural_kernels import _assert_solution

jax.config.update("jax_enable_x64", True)

DAMPINGS = (0.0, 1e-3, 0.5)


def _problem(name: str, B: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 2.0, B)
    if name == "linear_softmax":
        return rng.normal(size=(4, 3)), rng.normal(size=(B, 3)), w
    if name == "tabular_softmax":
        return rng.normal(size=(5, 4)), rng.integers(0, 4, B), w  # state 4 unvisited
    theta = np.concatenate(
        [rng.normal(size=(2, 4)), rng.uniform(-0.5, 0.5, (2, 1))], axis=1
    )
    return theta, rng.normal(size=(B, 3)), w


def _solve(F, g, damping):
    A = F + damping * np.eye(len(F))
    ev = np.linalg.eigvalsh(A)
    kept = ev[ev > 1e-11 * ev.max()]
    x = np.linalg.pinv(A, hermitian=True, rtol=1e-11) @ g.reshape(-1)
    return x.reshape(g.shape), np.array([kept.max() / kept.min()])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("damping", DAMPINGS)
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_natural_gradient_equals_dense_solve(name, damping, dtype):
    k = sf.kernels(name)
    theta, states, w = _problem(name)
    g = np.random.default_rng(1).normal(size=theta.shape)
    dense = k.kfac_fisher if name == "linear_softmax" else k.fisher
    F = np.asarray(dense(jnp.asarray(theta.astype(dtype), jnp.float64), states, w))
    want, cond = _solve(F, g.astype(dtype).astype(float), damping)
    got = k.natural_gradient(
        jnp.asarray(theta, dtype), states, jnp.asarray(g, dtype), damping, w
    )
    assert got.dtype == jnp.dtype(dtype) and got.shape == theta.shape
    _assert_solution(got.reshape(1, -1), want.reshape(1, -1), cond, dtype)


@pytest.mark.parametrize("damping", DAMPINGS)
def test_linear_softmax_is_exact_where_the_fisher_is_kronecker(damping):
    """One feature vector for every state: F = G kron phi phi^T exactly."""
    k = sf.kernels("linear_softmax")
    theta, states, w = _problem("linear_softmax")
    states = np.repeat(states[:1], len(states), axis=0)
    g = np.random.default_rng(2).normal(size=theta.shape)
    F = np.asarray(k.fisher(theta, states, w))
    np.testing.assert_allclose(k.kfac_fisher(theta, states, w), F, atol=1e-14)
    want, cond = _solve(F, g, damping)
    got = k.natural_gradient(theta, states, g, damping, w)
    _assert_solution(
        np.asarray(got).reshape(1, -1), want.reshape(1, -1), cond, "float64"
    )


def test_linear_softmax_kfac_step_is_an_ascent_direction():
    """(G kron A + lam I)^-1 is positive definite: g . x > 0 against the exact F too."""
    k = sf.kernels("linear_softmax")
    for seed in range(5):
        theta, states, w = _problem("linear_softmax", B=32, seed=seed)
        g = np.asarray(
            k.fvp(
                theta, states, np.random.default_rng(seed).normal(size=theta.shape), w
            )
        )
        x = np.asarray(k.natural_gradient(theta, states, g, 1e-3, w))
        assert float(np.vdot(g, x)) > 0


def test_linear_gaussian_is_exactly_kronecker():
    """The [W|b] block of F is diag(1/sigma^2) kron R: its K-FAC is the Fisher itself."""
    k = sf.kernels("linear_gaussian")
    theta, states, w = _problem("linear_gaussian")
    np.testing.assert_allclose(
        k.kfac_fisher(theta, states, w), k.fisher(theta, states, w), rtol=1e-14
    )


def test_tabular_unvisited_state():
    """A state no sample visits has a zero Fisher block: g / lambda, or 0 undamped."""
    k = sf.kernels("tabular_softmax")
    theta, states, w = _problem("tabular_softmax")
    assert 4 not in set(states.tolist())
    g = np.random.default_rng(3).normal(size=theta.shape)
    np.testing.assert_allclose(
        k.natural_gradient(theta, states, g, 0.5, w)[4], g[4] / 0.5
    )
    np.testing.assert_array_equal(k.natural_gradient(theta, states, g, 0.0, w)[4], 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_fisher_sqrt_squares_to_fisher(name, dtype):
    k = sf.kernels(name)
    theta, states, w = _problem(name)
    L = np.asarray(k.fisher_sqrt(jnp.asarray(theta, dtype), states, w), float)
    F = np.asarray(k.fisher(theta, states, w))
    assert L.shape[-1] == theta.size
    err = np.max(np.abs(L.T @ L - F)) / np.max(np.abs(F))
    assert err <= {"float64": 1e-13, "float32": 2e-6}[dtype], err


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_natural_gradient_jits(name):
    k = sf.kernels(name)
    theta, states, w = _problem(name)
    g = np.random.default_rng(4).normal(size=theta.shape)
    np.testing.assert_allclose(
        jax.jit(k.natural_gradient)(theta, states, g, 1e-2, w),
        k.natural_gradient(theta, states, g, 1e-2, w),
        rtol=1e-12,
    )


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_bad_input(name):
    k = sf.kernels(name)
    theta, states, _w = _problem(name)
    with pytest.raises(ValueError, match="damping must be finite and >= 0"):
        k.natural_gradient(theta, states, np.ones(theta.shape), -1.0)
    with pytest.raises(ValueError, match="damping must be a real scalar"):
        k.natural_gradient(theta, states, np.ones(theta.shape), np.ones(2))
    with pytest.raises(ValueError, match="g"):
        k.natural_gradient(theta, states, np.ones((theta.shape[0] + 1, theta.shape[1])))


def test_every_policy_says_whether_it_is_exact():
    assert {n: sf.kernels(n).NATURAL_GRADIENT == "exact" for n in POLICY_NAMES} == {
        "linear_softmax": False,
        "linear_gaussian": True,
        "tabular_softmax": True,
    }


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_traced_and_known_damping_agree(name):
    k = sf.kernels(name)
    theta, states, w = _problem(name)
    g = np.random.default_rng(5).normal(size=theta.shape)
    for lam in (0.0, 1e-3):
        known = jax.jit(lambda t, lam=lam: k.natural_gradient(t, states, g, lam, w))(
            theta
        )
        traced = jax.jit(lambda t, lam: k.natural_gradient(t, states, g, lam, w))(
            theta, lam
        )
        np.testing.assert_allclose(known, traced, rtol=1e-9)
    with pytest.raises(ValueError, match="damping must be finite and >= 0"):
        jax.jit(lambda t: k.natural_gradient(t, states, g, -1.0, w))(theta)


@pytest.mark.parametrize("K, d, B", [(4, 3, 32), (18, 16, 256), (6, 32, 1024)])
def test_linear_softmax_kfac_error_is_what_the_docstring_says(K, d, B):
    """The measured cosine with the exact natural gradient (>= 0.919 over 5 seeds)."""
    k = sf.kernels("linear_softmax")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        theta = rng.normal(size=(K, d)) / np.sqrt(d)
        states = rng.normal(size=(B, d))
        actions = np.asarray(k.sample(jax.random.key(seed), theta, states))
        adv = rng.normal(size=B)
        g = np.asarray(
            jnp.mean(k.score(theta, states, actions) * adv[:, None, None], 0)
        )
        F = np.asarray(k.fisher(theta, states))
        exact = np.linalg.solve(F + 1e-3 * np.eye(K * d), g.reshape(-1))
        x = np.asarray(k.natural_gradient(theta, states, g, 1e-3)).reshape(-1)
        cos = exact @ x / (np.linalg.norm(exact) * np.linalg.norm(x))
        assert cos >= 0.919, (seed, cos)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_uniform_weights_equal_unit_weights(name):
    """``weights=None`` (uniform) gives what weights all 1 give."""
    k = sf.kernels(name)
    theta, states, _ = _problem(name)
    g = np.random.default_rng(2).normal(size=theta.shape)
    ones = np.ones(len(states))
    for damping in (0.0, 1e-3):
        got = k.natural_gradient(theta, states, g, damping)
        want = k.natural_gradient(theta, states, g, damping, ones)
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(
        np.asarray(k.fisher(theta, states)),
        np.asarray(k.fisher(theta, states, ones)),
        rtol=1e-12,
        atol=1e-14,
    )
