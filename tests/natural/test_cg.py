"""Conjugate gradient on the singular softmax Fisher, in float32, with and without damping.

jax.scipy.sparse.linalg.cg(tol=0) in float32 can return NaN here (measured:
K = 2, b in the range of F, about 1 case in 3); conjugate_gradient must stay
finite and reach the minimum-norm solution F^+ b.

Tolerance: a CG solve in precision eps has forward error O(kappa eps) relative
to |x|, with kappa = lambda_max / lambda_min on the range of F; b itself is
rounded to float32 (another kappa eps). We allow 8 K kappa eps32 (K terms in
each inner product).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.sparse.linalg import cg

import symfisher as sf
from symfisher import natural

EPS32 = float(np.finfo(np.float32).eps)
K_SOFTMAX = sf.kernels("categorical_softmax")


def softmax_fisher64(z):
    p = np.exp(z - z.max())
    p /= p.sum()
    return np.diag(p) - np.outer(p, p)


def min_norm_solution(F, b):
    w, U = np.linalg.eigh(F)
    keep = w > 1e-12 * w.max()
    return U[:, keep] @ ((U[:, keep].T @ b) / w[keep]), w[keep].max() / w[keep].min()


@pytest.mark.parametrize("K", [2, 3, 5])
def test_singular_softmax_fisher_float32(K):
    rng = np.random.default_rng(K)
    solve = jax.jit(
        lambda z, b: natural.conjugate_gradient(
            lambda v: K_SOFTMAX.fvp(z, v), b, 0.0, 20
        )
    )
    jax_cg = jax.jit(
        lambda z, b: cg(lambda v: K_SOFTMAX.fvp(z, v), b, tol=0.0, maxiter=20)[0]
    )
    jax_nan = 0
    for _ in range(100):
        z = rng.standard_normal(K)
        F = softmax_fisher64(z)
        b = F @ rng.standard_normal(K)  # in the range of F
        x_star, kappa = min_norm_solution(F, b)
        z32, b32 = jnp.asarray(z, jnp.float32), jnp.asarray(b, jnp.float32)
        res = solve(z32, b32)
        x = np.asarray(res.x, np.float64)
        assert np.isfinite(x).all() and np.isfinite(np.asarray(res.residuals)).all()
        err = np.abs(x - x_star).max() / np.abs(x_star).max()
        assert err <= 8 * K * kappa * EPS32, (z, b, x, x_star, err, kappa)
        jax_nan += not bool(jnp.isfinite(jax_cg(z32, b32)).all())
    print(
        f"K={K}: jax.scipy.sparse.linalg.cg(tol=0) returned NaN in {jax_nan}/100 cases"
    )


def test_damped_solve_of_a_generic_right_hand_side():
    """b not in the range of F: only damping makes the system solvable."""
    rng = np.random.default_rng(0)
    for K in (3, 8):
        z, g = rng.standard_normal(K), rng.standard_normal(K)
        res = natural.conjugate_gradient(
            lambda v, z=z: K_SOFTMAX.fvp(jnp.asarray(z), v), jnp.asarray(g), 0.1, K + 2
        )
        x_star = np.linalg.solve(softmax_fisher64(z) + 0.1 * np.eye(K), g)
        # float64, kappa <= (0.25 + 0.1) / 0.1: 1e-12 is ~1000 kappa eps64
        assert np.abs(np.asarray(res.x) - x_star).max() <= 1e-12 * np.abs(x_star).max()
        assert int(res.iterations) <= K + 2
        assert res.residuals.shape == (K + 3,)


def test_undamped_generic_rhs_stays_finite():
    """No solution exists; the solver stops on zero curvature instead of exploding."""
    z, g = (
        jnp.asarray([0.3, -1.0, 2.0], jnp.float32),
        jnp.asarray([1.0, 1.0, 1.0], jnp.float32),
    )
    res = natural.conjugate_gradient(lambda v: K_SOFTMAX.fvp(z, v), g, 0.0, 50)
    assert np.isfinite(np.asarray(res.x)).all()
    assert np.abs(np.asarray(res.x)).max() < 1e3


def test_stops_and_freezes_after_convergence():
    A = jnp.diag(jnp.asarray([1.0, 2.0, 3.0]))
    res = natural.conjugate_gradient(lambda v: A @ v, jnp.ones(3), iters=10)
    assert int(res.iterations) == 3  # 3 distinct eigenvalues
    np.testing.assert_allclose(res.x, [1.0, 0.5, 1 / 3], rtol=1e-14)
    assert np.all(np.asarray(res.residuals[4:]) == float(res.residuals[3]))


def test_pytrees_and_tol():
    tree = {"a": jnp.ones(2), "b": [jnp.ones(3)]}
    res = natural.conjugate_gradient(
        lambda v: jax.tree.map(lambda x: 2 * x, v), tree, damping=1.0, tol=1e-3
    )
    np.testing.assert_allclose(res.x["b"][0], np.full(3, 1 / 3), rtol=1e-14)


def test_bad_arguments():
    f = lambda v: v  # noqa: E731
    with pytest.raises(ValueError, match="damping must be >= 0"):
        natural.conjugate_gradient(f, jnp.ones(2), damping=-0.1)
    with pytest.raises(ValueError, match="iters must be an integer >= 1"):
        natural.conjugate_gradient(f, jnp.ones(2), iters=0)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        natural.conjugate_gradient(f, jnp.ones(2), tol=-1.0)
    with pytest.raises(TypeError, match="floating"):
        natural.conjugate_gradient(f, jnp.ones(2, int))


# --------------------------------------------------------------------------
# preconditioned CG


def spd(n, rng, spread=1e4):
    """A random SPD matrix with eigenvalues from 1/spread to 1 and a spread-out diagonal."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    M = Q @ np.diag(np.geomspace(1 / spread, 1, n)) @ Q.T
    d = np.geomspace(1e-3, 1.0, n)
    return np.sqrt(d)[:, None] * (np.eye(n) + 0.05 * M) * np.sqrt(d)[None, :]


def test_pcg_with_the_exact_inverse_takes_one_iteration():
    rng = np.random.default_rng(1)
    A = spd(12, rng)
    b = rng.standard_normal(12)
    Ainv = np.linalg.inv(A)
    res = natural.conjugate_gradient(
        lambda v: jnp.asarray(A) @ v,
        jnp.asarray(b),
        iters=10,
        preconditioner=lambda r: jnp.asarray(Ainv) @ r,
    )
    assert int(res.iterations) == 1
    x_star = np.linalg.solve(A, b)
    np.testing.assert_allclose(res.x, x_star, rtol=0, atol=1e-10 * np.abs(x_star).max())


def test_jacobi_preconditioner_needs_fewer_iterations():
    rng = np.random.default_rng(2)
    A = spd(40, rng)
    b = jnp.asarray(rng.standard_normal(40))
    d = jnp.asarray(np.diag(A))
    fvp = lambda v: jnp.asarray(A) @ v  # noqa: E731
    plain = natural.conjugate_gradient(fvp, b, iters=200, tol=1e-8)
    pcg = natural.conjugate_gradient(
        fvp, b, iters=200, tol=1e-8, preconditioner=lambda r: r / d
    )
    x_star = np.linalg.solve(A, np.asarray(b))
    for res in (plain, pcg):
        assert float(res.residuals[-1]) <= 1e-8 * float(res.residuals[0])
        np.testing.assert_allclose(res.x, x_star, rtol=1e-6 * np.abs(x_star).max())
    print(f"iterations: plain {int(plain.iterations)}, Jacobi {int(pcg.iterations)}")
    assert int(pcg.iterations) < int(plain.iterations)


def test_identity_preconditioner_is_plain_cg():
    rng = np.random.default_rng(3)
    A = jnp.asarray(spd(10, rng))
    b = jnp.asarray(rng.standard_normal(10))
    plain = natural.conjugate_gradient(lambda v: A @ v, b, 0.01, 6)
    ident = natural.conjugate_gradient(
        lambda v: A @ v, b, 0.01, 6, preconditioner=lambda r: r
    )
    np.testing.assert_allclose(ident.x, plain.x, rtol=1e-13)
    np.testing.assert_allclose(ident.residuals, plain.residuals, rtol=1e-13)
    assert int(ident.iterations) == int(plain.iterations)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_pcg_singular_softmax_fisher_float32(K):
    """M^-1 = diag(1/p) on F = diag(p) - p p^T, no damping: finite, F x = b."""
    rng = np.random.default_rng(100 + K)
    solve = jax.jit(
        lambda z, b: natural.conjugate_gradient(
            lambda v: K_SOFTMAX.fvp(z, v),
            b,
            0.0,
            20,
            preconditioner=lambda r: r / jax.nn.softmax(z),
        )
    )
    for _ in range(100):
        z = rng.standard_normal(K)
        F = softmax_fisher64(z)
        b = F @ rng.standard_normal(K)
        _, kappa = min_norm_solution(F, b)
        res = solve(jnp.asarray(z, jnp.float32), jnp.asarray(b, jnp.float32))
        x = np.asarray(res.x, np.float64)
        assert np.isfinite(x).all() and np.isfinite(np.asarray(res.residuals)).all()
        rel = np.linalg.norm(F @ x - b) / np.linalg.norm(b)
        assert rel <= 8 * K * kappa * EPS32, (z, b, x, rel, kappa)


def test_bad_preconditioner():
    f = lambda v: v  # noqa: E731
    tree = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(
        ValueError, match=r"preconditioner\(r\) must have the same tree"
    ):
        natural.conjugate_gradient(f, tree, preconditioner=lambda r: [r["a"], r["b"]])
    with pytest.raises(ValueError, match=r"preconditioner\(r\): leaf 1 has shape"):
        natural.conjugate_gradient(
            f, tree, preconditioner=lambda r: {"a": r["a"], "b": r["b"][:2]}
        )
    with pytest.raises(TypeError, match="preconditioner must be a function"):
        natural.conjugate_gradient(f, tree, preconditioner=jnp.ones(5))
