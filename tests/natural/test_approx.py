"""Diagonal / K-FAC / empirical Fisher next to the exact one, with their errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symfisher.kernels import kernels
from symfisher.natural.fisher_approx import (
    approximation_error,
    compare_approximations,
    empirical_fisher,
)


def test_identical_matrices_have_zero_error():
    F = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    e = approximation_error("same", F, F, jnp.array([1.0, -1.0]))
    assert e.frobenius == 0.0 and e.ng_relative_error < 1e-12
    assert e.ng_cosine == pytest.approx(1.0)


def test_errors_match_hand_computation():
    F = jnp.array([[2.0, 1.0], [1.0, 2.0]])
    D = jnp.diag(jnp.diag(F))
    g = jnp.array([1.0, 0.0])
    e = approximation_error("diag", F, D, g)
    ng = np.linalg.solve(np.array(F), np.array(g))
    na = np.array([0.5, 0.0])
    assert e.relative_frobenius == pytest.approx(np.sqrt(2) / np.sqrt(10))
    assert e.ng_relative_error == pytest.approx(
        np.linalg.norm(na - ng) / np.linalg.norm(ng)
    )
    assert e.ng_cosine == pytest.approx(
        na @ ng / np.linalg.norm(na) / np.linalg.norm(ng)
    )


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="same square matrix shape"):
        approximation_error("x", jnp.eye(2), jnp.eye(3), jnp.ones(2))
    with pytest.raises(ValueError, match="g has 3 entries"):
        approximation_error("x", jnp.eye(2), jnp.eye(2), jnp.ones(3))


def _gaussian_setup(B=4096, seed=0):
    k = kernels("linear_gaussian")
    key = jax.random.PRNGKey(seed)
    ks, ka = jax.random.split(key)
    theta = jnp.array([[0.5, -0.3, 0.1, -0.2]])  # [w1, w2, b, log sigma]
    states = jax.random.normal(ks, (B, 2))
    return k, theta, states, ka


def test_kfac_exact_for_linear_gaussian_not_for_softmax():
    with jax.enable_x64(True):
        k, theta, states, _ = _gaussian_setup()
        g = jnp.ones(theta.size)
        errs = {
            e.name: e
            for e in compare_approximations(
                k, theta.astype(jnp.float64), states.astype(jnp.float64), g
            )
        }
        assert errs["K-FAC"].relative_frobenius < 1e-12
        assert errs["diagonal"].relative_frobenius > 1e-3
        ks = kernels("linear_softmax")
        rng = np.random.default_rng(0)
        W = jnp.asarray(rng.normal(size=(3, 4)))
        S = jnp.asarray(rng.normal(size=(256, 4)))
        errs = {
            e.name: e
            for e in compare_approximations(ks, W, S, jnp.ones(12), damping=1e-6)
        }
        assert errs["K-FAC"].relative_frobenius > 1e-3


def test_empirical_fisher_on_policy_matches_off_policy_differs_badly():
    """Worked case: actions logged by a behaviour policy with 3x the spread."""
    with jax.enable_x64(True):
        k, theta, states, ka = _gaussian_setup(B=2**16)
        theta = theta.astype(jnp.float64)
        states = states.astype(jnp.float64)
        F = np.asarray(k.fisher(theta, states))
        on = k.score(theta, states, k.sample(ka, theta, states)).reshape(
            states.shape[0], -1
        )
        emp = np.asarray(empirical_fisher(on))
        # on-policy: each entry within 5 standard errors of the truth
        X = np.asarray(on)[:, :, None] * np.asarray(on)[:, None, :]
        se = X.std(axis=0, ddof=1) / np.sqrt(X.shape[0])
        assert np.all(np.abs(emp - F) <= 5 * se + 1e-12)
        wide = theta.at[0, 3].add(np.log(3.0))  # sigma_b = 3 sigma
        off = k.score(theta, states, k.sample(ka, wide, states))
        emp_off = np.asarray(empirical_fisher(off))
        # log-sigma entry: E[(z^2 - 1)^2] with z ~ N(0, 9) is 226, the truth is 2
        assert emp_off[3, 3] / F[3, 3] > 50
